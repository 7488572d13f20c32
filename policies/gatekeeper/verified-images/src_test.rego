package provenantverifiedimages_test

import rego.v1

import data.provenantverifiedimages

trusted := "registry.example.com/trusted/app:1.0"

untrusted := "registry.example.com/other/app:1.0"

untrusted_error := "POLICY_STATIC_DENY: static deny for image registry.example.com/other/app:1.0"

# Answers like Provenant's /v1/verify for the two images above, and fails on any other key.
mock_provider(request) := {
	"responses": [[k, {"image": k, "digest": "sha256:00"}] | some k in request.keys; k == trusted],
	"errors": [[k, untrusted_error] | some k in request.keys; k != trusted],
	"system_error": "",
	"status_code": 200,
} if request.provider == "provenant"

outage(_) := {"responses": [], "errors": [], "system_error": "dial tcp 10.0.0.1:8443: connection refused", "status_code": 0}

silent(_) := {"responses": [], "errors": [], "system_error": "", "status_code": 200}

pod(containers) := {"kind": "Pod", "spec": {"containers": containers}}

review(obj) := {"review": {"object": obj}, "parameters": {}}

violations(obj_input) := v if {
	v := provenantverifiedimages.violation with input as obj_input with external_data as mock_provider
}

test_trusted_pod_is_allowed if {
	count(violations(review(pod([{"name": "app", "image": trusted}])))) == 0
}

test_untrusted_pod_is_denied_naming_container_image_and_error if {
	v := violations(review(pod([{"name": "app", "image": trusted}, {"name": "side", "image": untrusted}])))
	count(v) == 1
	some m in v
	contains(m.msg, `containers "side"`)
	contains(m.msg, untrusted)
	contains(m.msg, "POLICY_STATIC_DENY")
}

test_init_and_ephemeral_containers_are_checked if {
	obj := {"kind": "Pod", "spec": {
		"containers": [{"name": "app", "image": trusted}],
		"initContainers": [{"name": "init", "image": untrusted}],
		"ephemeralContainers": [{"name": "debug", "image": untrusted}],
	}}
	msgs := {m.msg | some m in violations(review(obj))}
	count(msgs) == 2
	some a in msgs
	contains(a, `initContainers "init"`)
	some b in msgs
	contains(b, `ephemeralContainers "debug"`)
}

test_every_workload_template_is_checked if {
	every kind in ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"] {
		obj := {"kind": kind, "spec": {"template": {"spec": {"containers": [{"name": "app", "image": untrusted}]}}}}
		count(violations(review(obj))) == 1
	}
}

test_cronjob_job_template_is_checked if {
	spec := {"template": {"spec": {"containers": [{"name": "app", "image": untrusted}]}}}
	obj := {"kind": "CronJob", "spec": {"jobTemplate": {"spec": spec}}}
	count(violations(review(obj))) == 1
}

test_other_kinds_are_ignored if {
	obj := {"kind": "ConfigMap", "data": {"image": untrusted}}
	count(violations(review(obj))) == 0
}

test_outage_denies_by_default if {
	v := provenantverifiedimages.violation with input as review(pod([{"name": "app", "image": trusted}]))
		with external_data as outage
	count(v) == 1
	some m in v
	contains(m.msg, "Provenant is unavailable")
	contains(m.msg, trusted)
}

test_outage_admits_when_failure_policy_is_ignore if {
	params := {"review": {"object": pod([{"name": "app", "image": trusted}])}, "parameters": {"failurePolicy": "Ignore"}}
	v := provenantverifiedimages.violation with input as params with external_data as outage
	count(v) == 0
}

test_key_without_answer_denies if {
	v := provenantverifiedimages.violation with input as review(pod([{"name": "app", "image": trusted}]))
		with external_data as silent
	count(v) == 1
}

test_image_volumes_are_checked_and_other_volumes_ignored if {
	obj := {"kind": "Pod", "spec": {
		"containers": [{"name": "app", "image": trusted}],
		"volumes": [{"name": "models", "image": {"reference": untrusted}}, {"name": "scratch", "emptyDir": {}}],
	}}
	v := violations(review(obj))
	count(v) == 1
	some m in v
	contains(m.msg, `volumes "models" has an untrusted image`)
	contains(m.msg, untrusted)
}

test_image_volumes_of_workload_templates_are_checked if {
	spec := {"containers": [{"name": "app", "image": trusted}], "volumes": [{"name": "models", "image": {"reference": untrusted}}]}
	count(violations(review({"kind": "Deployment", "spec": {"template": {"spec": spec}}}))) == 1
}

update(old, new, approve) := {
	"review": {"operation": "UPDATE", "object": old_or_new(new), "oldObject": old_or_new(old)},
	"parameters": {"automaticUnchangedApproval": approve},
}

old_or_new(image) := pod([{"name": "app", "image": image}])

# No provider call at all: external_data answering anything would fail the test.
refuse(_) := {"responses": [], "errors": [], "system_error": "should not be called", "status_code": 500}

test_unchanged_images_are_not_sent_on_update_with_automatic_unchanged_approval if {
	v := provenantverifiedimages.violation with input as update(untrusted, untrusted, true) with external_data as refuse
	count(v) == 0
}

test_changed_images_are_still_verified_on_update if {
	count(violations(update(trusted, untrusted, true))) == 1
}

test_unchanged_images_are_verified_without_automatic_unchanged_approval if {
	count(violations(update(untrusted, untrusted, false))) == 1
}

test_automatic_unchanged_approval_does_not_apply_to_create if {
	obj := {"review": {"operation": "CREATE", "object": old_or_new(untrusted)}, "parameters": {"automaticUnchangedApproval": true}}
	count(violations(obj)) == 1
}

# `kubectl debug` adds a container through the pods/ephemeralcontainers subresource: Gatekeeper reviews
# an UPDATE of kind Pod with subResource "ephemeralcontainers", whose object is the whole Pod (the API
# server keeps the stored spec but for spec.ephemeralContainers).
debug(image) := {"review": {
	"operation": "UPDATE",
	"kind": {"group": "", "version": "v1", "kind": "Pod"},
	"resource": {"group": "", "version": "v1", "resource": "pods"},
	"subResource": "ephemeralcontainers",
	"oldObject": pod([{"name": "app", "image": trusted}]),
	"object": object.union(pod([{"name": "app", "image": trusted}]), {"spec": {"ephemeralContainers": [{"name": "debugger", "image": image}]}}),
}}

test_an_untrusted_ephemeral_container_added_through_the_subresource_is_denied if {
	v := violations(debug(untrusted))
	count(v) == 1
	some m in v
	contains(m.msg, sprintf(`ephemeralContainers "debugger" has an untrusted image "%v"`, [untrusted]))
}

test_a_trusted_ephemeral_container_added_through_the_subresource_is_allowed if {
	count(violations(debug(trusted))) == 0
}
