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

{{- define "kubetune.storeEndpoint" -}}
{{- if .Values.storage.endpoint -}}
{{ .Values.storage.endpoint }}
{{- else if .Values.minio.enabled -}}
{{ printf "http://%s-minio.%s.svc:9000" (include "kubetune.fullname" .) .Release.Namespace }}
{{- end -}}
{{- end -}}

{{- define "kubetune.storeSecret" -}}
{{- if .Values.storage.credentialsSecret -}}
{{ .Values.storage.credentialsSecret }}
{{- else if .Values.minio.enabled -}}
{{ printf "%s-minio" (include "kubetune.fullname" .) }}
{{- end -}}
{{- end -}}
