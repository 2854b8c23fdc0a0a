{{- define "faultline-hub.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "faultline-hub.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "faultline-hub.selectorLabels" -}}
app.kubernetes.io/name: {{ include "faultline-hub.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "faultline-hub.labels" -}}
{{ include "faultline-hub.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The hub's scheme towards its pods: plain HTTP only behind a TLS-terminating Ingress. */}}
{{- define "faultline-hub.scheme" -}}
{{- if eq .Values.tls.mode "ingress" }}HTTP{{ else }}HTTPS{{ end -}}
{{- end -}}

{{- define "faultline-hub.replicas" -}}
{{- if .Values.database.embedded.enabled }}1{{ else }}{{ .Values.replicaCount }}{{ end -}}
{{- end -}}

{{- define "faultline-hub.publicUrl" -}}
{{- if .Values.publicUrl -}}
{{ .Values.publicUrl }}
{{- else if .Values.ingress.enabled -}}
https://{{ .Values.ingress.host }}
{{- end -}}
{{- end -}}

{{/* Refuses combinations that would deploy but not work. */}}
{{- define "faultline-hub.validate" -}}
{{- if not (has .Values.tls.mode (list "hub" "ingress")) -}}
{{- fail (printf "tls.mode must be hub or ingress, not %q" .Values.tls.mode) -}}
{{- end -}}
{{- if and (eq .Values.tls.mode "ingress") (not .Values.ingress.enabled) -}}
{{- fail "tls.mode=ingress serves plain HTTP (--insecure-http): enable the Ingress that terminates TLS in front of it" -}}
{{- end -}}
{{- if and (not .Values.database.embedded.enabled) (not .Values.database.url.secretName) -}}
{{- fail "database.url.secretName is required (a Secret holding DATABASE_URL), unless database.embedded.enabled for a trial" -}}
{{- end -}}
{{- if and .Values.database.embedded.enabled (gt (int .Values.replicaCount) 1) -}}
{{- fail "database.embedded.enabled runs one replica with its own PostgreSQL: set replicaCount=1, or use an external database for more" -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the hub's certificate (tls.mode=hub). */}}
{{- define "faultline-hub.tlsSecret" -}}
{{- .Values.tls.secretName | default (printf "%s-tls" (include "faultline-hub.fullname" .)) -}}
{{- end -}}
