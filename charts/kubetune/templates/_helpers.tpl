{{- /* Names, labels, images, the store/Pushgateway settings handed to the operator, and the security
contexts every pod of the chart uses: one home each. */ -}}

{{- define "kubetune.fullname" -}}
{{- printf "%s" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kubetune.labels" -}}
app.kubernetes.io/name: kubetune
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "kubetune.operatorSelector" -}}
app.kubernetes.io/name: kubetune
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- /* Selector labels of a bundled component: (list $ "minio") */ -}}
{{- define "kubetune.componentSelector" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- /* repository:tag of an image value; the tag defaults to the chart's appVersion; "@sha256:..." tags
are digests. (list $ .Values.x.image) */ -}}
{{- define "kubetune.image" -}}
{{- $ := index . 0 -}}
{{- $image := index . 1 -}}
{{- $tag := $image.tag | default $.Chart.AppVersion | toString -}}
{{- if hasPrefix "@" $tag -}}
{{ $image.repository }}{{ $tag }}
{{- else -}}
{{ $image.repository }}:{{ $tag }}
{{- end -}}
{{- end -}}

{{- define "kubetune.serviceHost" -}}
{{- $ := index . 0 -}}
{{- printf "%s-%s.%s.svc.%s" (include "kubetune.fullname" $) (index . 1) $.Release.Namespace $.Values.clusterDomain -}}
{{- end -}}

{{- /* The default store: an explicit endpoint, else the bundled MinIO by its fully qualified name (runs live
in other namespaces, where a short Service name does not resolve). */ -}}
{{- define "kubetune.storeEndpoint" -}}
{{- if .Values.storage.endpoint -}}
{{ .Values.storage.endpoint }}
{{- else if .Values.minio.enabled -}}
{{ printf "http://%s:9000" (include "kubetune.serviceHost" (list . "minio")) }}
{{- end -}}
{{- end -}}

{{- /* The bundled MinIO uses the store's endpoint only when no external endpoint replaces it. */ -}}
{{- define "kubetune.storeIsMinio" -}}
{{- if and .Values.minio.enabled (not .Values.storage.endpoint) }}true{{ end -}}
{{- end -}}

{{- define "kubetune.minioSecret" -}}
{{- .Values.minio.existingSecret | default (printf "%s-minio" (include "kubetune.fullname" .)) -}}
{{- end -}}

{{- /* Secret (release namespace) with the default store's AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. */ -}}
{{- define "kubetune.storeSecret" -}}
{{- if .Values.storage.existingSecret -}}
{{ .Values.storage.existingSecret }}
{{- else if .Values.minio.enabled -}}
{{ include "kubetune.minioSecret" . }}
{{- end -}}
{{- end -}}

{{- define "kubetune.pushgatewayUrl" -}}
{{- if .Values.pushgateway.enabled -}}
{{ printf "http://%s:9091" (include "kubetune.serviceHost" (list . "pushgateway")) }}
{{- else -}}
{{ .Values.pushgateway.url }}
{{- end -}}
{{- end -}}

{{- /* values.schema.json holds the rules between values too (its allOf); this one stays here for its
wording. */ -}}
{{- define "kubetune.validate" -}}
{{- $m := .Values.minio -}}
{{- if and $m.enabled (not $m.existingSecret) (not $m.rootPassword) -}}
{{- fail "minio.rootPassword is required when minio.enabled is true (or name a Secret in minio.existingSecret)" -}}
{{- end -}}
{{- end -}}

{{- /* Pod Security Standards "restricted" for every pod of the chart (tests/support/pod_security.py checks
it). (list uid) */ -}}
{{- define "kubetune.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{- define "kubetune.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities: {drop: ["ALL"]}
{{- end -}}

{{- define "kubetune.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets -}}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
