{{/* Names and labels. */}}
{{- define "provenant.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "provenant.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "provenant.selectorLabels" -}}
app.kubernetes.io/name: {{ include "provenant.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: provider
{{- end }}

{{- define "provenant.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "provenant.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "provenant.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "provenant.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "provenant.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The Service's DNS names, which the serving certificate covers. */}}
{{- define "provenant.dnsNames" -}}
{{- $svc := include "provenant.fullname" . }}
{{- list $svc (printf "%s.%s" $svc .Release.Namespace) (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.cluster.local" $svc .Release.Namespace) | toJson }}
{{- end }}

{{/* Paths inside the container. */}}
{{- define "provenant.configDir" -}}/etc/provenant/config{{- end }}
{{- define "provenant.tlsDir" -}}/etc/provenant/tls{{- end }}
{{- define "provenant.clientCADir" -}}/etc/provenant/client-ca{{- end }}
{{- define "provenant.hmacDir" -}}/etc/provenant/cache-hmac{{- end }}

{{/* The API server is needed for registry Secrets and TokenReviews: only then is a token mounted. */}}
{{- define "provenant.registrySecrets" -}}
{{- $secrets := list }}
{{- range .Values.registries }}
{{- if and .auth (hasKey .auth "secret") }}
{{- $secrets = append $secrets .auth.secret }}
{{- end }}
{{- end }}
{{- toJson $secrets }}
{{- end }}

{{- define "provenant.needsApiServer" -}}
{{- if or (gt (len (include "provenant.registrySecrets" . | fromJsonArray)) 0) (and .Values.kyverno.enabled .Values.kyverno.tokenAuth.enabled) }}true{{- end }}
{{- end }}

{{/*
The serving certificate and its CA, generated once per render (memoised in .Values, which every
template shares) and kept across upgrades: an existing Secret's certificate is read back with lookup.
*/}}
{{- define "provenant.generatedTls" -}}
{{- if not (hasKey .Values "__provenantTls") }}
{{- $name := printf "%s-tls" (include "provenant.fullname" .) }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace $name }}
{{- $tls := dict }}
{{- if and $existing $existing.data (index $existing.data "ca.crt") (index $existing.data "tls.crt") (index $existing.data "tls.key") }}
{{- $tls = dict "ca" (index $existing.data "ca.crt" | b64dec) "cert" (index $existing.data "tls.crt" | b64dec) "key" (index $existing.data "tls.key" | b64dec) }}
{{- else }}
{{- $ca := genCA (printf "%s-ca" (include "provenant.fullname" .)) (int .Values.tls.generated.validityDays) }}
{{- $dns := include "provenant.dnsNames" . | fromJsonArray }}
{{- $cert := genSignedCert (index $dns 2) nil $dns (int .Values.tls.generated.validityDays) $ca }}
{{- $tls = dict "ca" $ca.Cert "cert" $cert.Cert "key" $cert.Key }}
{{- end }}
{{- $_ := set .Values "__provenantTls" $tls }}
{{- end }}
{{- toJson (get .Values "__provenantTls") }}
{{- end }}

{{/* PEM of the CA that signed the serving certificate (the Providers' caBundle). */}}
{{- define "provenant.servingCA" -}}
{{- if .Values.tls.certManager.enabled }}
{{- $name := printf "%s-tls" (include "provenant.fullname" .) }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace $name }}
{{- if .Values.tls.certManager.caBundle }}
{{- .Values.tls.certManager.caBundle }}
{{- else if and $existing $existing.data (index $existing.data "ca.crt") }}
{{- index $existing.data "ca.crt" | b64dec }}
{{- else }}
{{- fail "tls.certManager.caBundle: the PEM of the CA your cert-manager issuer signs with is needed for the Gatekeeper Providers' caBundle" }}
{{- end }}
{{- else }}
{{- (include "provenant.generatedTls" . | fromJson).ca }}
{{- end }}
{{- end }}

{{/* PEM of Gatekeeper's CA (client certificates), from values or Gatekeeper's Secret; empty when neither. */}}
{{- define "provenant.gatekeeperCA" -}}
{{- if .Values.gatekeeper.enabled }}
{{- if .Values.gatekeeper.clientCA.pem }}
{{- .Values.gatekeeper.clientCA.pem }}
{{- else }}
{{- $secret := lookup "v1" "Secret" .Values.gatekeeper.namespace .Values.gatekeeper.clientCA.fromSecret.name }}
{{- if and $secret $secret.data (index $secret.data .Values.gatekeeper.clientCA.fromSecret.key) }}
{{- index $secret.data .Values.gatekeeper.clientCA.fromSecret.key | b64dec }}
{{- else }}
{{- fail (printf "gatekeeper.clientCA: Provenant must trust Gatekeeper's client certificate; set gatekeeper.clientCA.pem, or install Gatekeeper first so that Secret %s/%s (key %s) can be read" .Values.gatekeeper.namespace .Values.gatekeeper.clientCA.fromSecret.name .Values.gatekeeper.clientCA.fromSecret.key) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{- define "provenant.redisUrl" -}}
{{- if .Values.redis.enabled }}
{{- printf "redis://%s-redis.%s.svc:6379" (include "provenant.fullname" .) .Release.Namespace }}
{{- else }}
{{- .Values.redis.external.url }}
{{- end }}
{{- end }}

{{/* The Secret and key holding the Redis password: the chart's for its Redis, else the one named. */}}
{{- define "provenant.redisPasswordSecret" -}}
{{- if .Values.redis.enabled }}
{{- dict "name" (printf "%s-redis" (include "provenant.fullname" .)) "key" "password" | toJson }}
{{- else if and .Values.redis.external.url .Values.redis.external.passwordSecret.name }}
{{- .Values.redis.external.passwordSecret | toJson }}
{{- end }}
{{- end }}

{{- define "provenant.redisPasswordDir" -}}/etc/provenant/redis{{- end }}

{{- define "provenant.hmacSecretName" -}}
{{- default (printf "%s-cache-hmac" (include "provenant.fullname" .)) .Values.redis.hmacKey.existingSecret }}
{{- end }}

{{/* Provenant's config file: the values in the config file's shape, plus what the chart manages. */}}
{{- define "provenant.config" -}}
{{- $server := deepCopy .Values.server }}
{{- $tls := dict "cert" (printf "%s/tls.crt" (include "provenant.tlsDir" .)) "key" (printf "%s/tls.key" (include "provenant.tlsDir" .)) }}
{{- $tls = merge $tls (default dict $server.tls) }}
{{- if include "provenant.gatekeeperCA" . }}
{{- $_ := set $tls "clientCA" (printf "%s/ca.crt" (include "provenant.clientCADir" .)) }}
{{- end }}
{{- $_ := set $server "tls" $tls }}
{{- $_ := set $server "host" "0.0.0.0" }}
{{- if and .Values.kyverno.enabled .Values.kyverno.tokenAuth.enabled }}
{{- $users := list }}
{{- range .Values.kyverno.tokenAuth.serviceAccounts }}{{ $users = append $users (printf "system:serviceaccount:%s" .) }}{{ end }}
{{- $kyverno := dict "enabled" true "audience" .Values.kyverno.tokenAuth.audience "serviceAccounts" $users "reviewCacheSeconds" .Values.kyverno.tokenAuth.reviewCacheSeconds }}
{{- $_ := set $server "auth" (dict "kyverno" $kyverno) }}
{{- end }}
{{- $cache := deepCopy .Values.cache }}
{{- if include "provenant.redisUrl" . }}
{{- $_ := set $cache "redis" (include "provenant.redisUrl" .) }}
{{- $_ := set $cache "hmacKeyFile" (printf "%s/%s" (include "provenant.hmacDir" .) .Values.redis.hmacKey.key) }}
{{- with include "provenant.redisPasswordSecret" . }}
{{- $_ := set $cache "redisPasswordFile" (printf "%s/%s" (include "provenant.redisPasswordDir" $) (fromJson .).key) }}
{{- end }}
{{- end }}
{{- $config := dict "validators" .Values.validators "policy" .Values.policy "server" $server "registries" .Values.registries "network" .Values.network "cache" $cache "log" .Values.log }}
{{- $sigstore := deepCopy .Values.sigstore }}
{{- if not $sigstore.tufCacheDir }}
{{- $_ := set $sigstore "tufCacheDir" "/var/cache/provenant/tuf" }}
{{- end }}
{{- $_ := set $config "sigstore" $sigstore }}
{{- toYaml $config }}
{{- end }}

{{/* preStop + drain + the longest request (body, then the deadline) + 2 s, rounded up. */}}
{{- define "provenant.terminationGracePeriodSeconds" -}}
{{- if .Values.terminationGracePeriodSeconds }}
{{- .Values.terminationGracePeriodSeconds }}
{{- else }}
{{- $server := .Values.server }}
{{- $drain := int (ternary $server.drainSeconds 10 (hasKey $server "drainSeconds")) }}
{{- $bodyMs := int (ternary $server.bodyTimeoutMs 10000 (hasKey $server "bodyTimeoutMs")) }}
{{- $deadlineMs := int (ternary $server.requestDeadlineMs 2500 (hasKey $server "requestDeadlineMs")) }}
{{- $requestMs := add $bodyMs $deadlineMs }}
{{- add (int .Values.preStopSleepSeconds) $drain (div (add $requestMs 999) 1000) 2 }}
{{- end }}
{{- end }}
