# Denies containers whose image Provenant does not trust.
#
# Every image of a Pod, or of the Pod template of a workload, is sent to the `provenant` external
# data provider in one call; Provenant answers per image with the trusted digest, or an error
# "<CODE>: <message>". Messages quote with "%v" rather than %q, which opa-wasm's sprintf lacks
# (provenant policy test runs this Rego as WASM). Each message names the field (containers, initContainers,
# ephemeralContainers, volumes for image volumes), the container or volume and the image.
#
# parameters.failurePolicy decides what a Provenant outage (`system_error`: unreachable, timeout,
# registry down) means: "Fail" (default) denies, "Ignore" admits.
package provenantverifiedimages

# Gatekeeper reads `rego:` as Rego v0 and allows only future.keywords and data.lib imports (not
# rego.v1); opa check --v0-v1 keeps this source valid as v1 too.
import future.keywords.contains
import future.keywords.if
import future.keywords.in

workload_kinds := {
	"DaemonSet", "Deployment", "Job", "ReplicaSet", "ReplicationController", "StatefulSet",
}

container_fields := ["containers", "initContainers", "ephemeralContainers"]

pod_spec_of(obj) := obj.spec if obj.kind == "Pod"

pod_spec_of(obj) := obj.spec.template.spec if obj.kind in workload_kinds

pod_spec_of(obj) := obj.spec.jobTemplate.spec.template.spec if obj.kind == "CronJob"

# Every image of an object as {field, name, image}: containers of each list, and image volumes
# (Kubernetes 1.31+: spec.volumes[].image.reference, pulled like a container image).
images_of(obj) := {c | some field in container_fields; some x in pod_spec_of(obj)[field]; is_string(x.image); c := {"field": field, "name": x.name, "image": x.image}} | {v | some x in pod_spec_of(obj).volumes; is_string(x.image.reference); v := {"field": "volumes", "name": x.name, "image": x.image.reference}}

# parameters.automaticUnchangedApproval (Connaisseur's feature): on UPDATE, an image the old object
# already had is not sent again. Without an old object (CREATE, audit) every image is checked.
unchanged(image) if {
	object.get(input, ["parameters", "automaticUnchangedApproval"], false) == true
	input.review.operation == "UPDATE"
	some old in images_of(input.review.oldObject)
	old.image == image
}

# The images to verify, as {field, name, image}.
containers contains c if {
	some c in images_of(input.review.object)
	not unchanged(c.image)
}

images := sort({c.image | some c in containers})

# Gatekeeper's external_data returns responses and errors as [key, value] pairs, and system_error.
provider_response := external_data({"provider": "provenant", "keys": images}) if count(images) > 0

item_errors := {key: err | some [key, err] in provider_response.errors}

answered := {key | some [key, _] in provider_response.responses}

system_error := provider_response.system_error if provider_response.system_error != ""

fail_closed if object.get(input, ["parameters", "failurePolicy"], "Fail") != "Ignore"

violation contains {"msg": msg} if {
	some c in containers
	err := item_errors[c.image]
	msg := sprintf("%v \"%v\" has an untrusted image \"%v\": %v", [c.field, c.name, c.image, err])
}

violation contains {"msg": msg} if {
	fail_closed
	some c in containers
	msg := sprintf("%v \"%v\": image \"%v\" could not be verified, Provenant is unavailable: %v", [c.field, c.name, c.image, system_error])
}

# A key with neither an answer nor an error: a provider that dropped it, or an empty reply.
violation contains {"msg": msg} if {
	fail_closed
	not system_error
	count(images) > 0
	some c in containers
	not item_errors[c.image]
	not c.image in answered
	msg := sprintf("%v \"%v\": Provenant gave no answer for image \"%v\"", [c.field, c.name, c.image])
}
