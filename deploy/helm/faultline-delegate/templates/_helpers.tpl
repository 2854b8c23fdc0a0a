{{- define "faultline-delegate.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "faultline-delegate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "faultline-delegate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "faultline-delegate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "faultline-delegate.labels" -}}
{{ include "faultline-delegate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "faultline-delegate.serviceAccountName" -}}
{{- .Values.serviceAccount.name | default (include "faultline-delegate.fullname" .) -}}
{{- end -}}

{{/* The namespaces the Kubernetes faults and probe may touch, as a JSON list. */}}
{{- define "faultline-delegate.namespaces" -}}
{{- .Values.kubernetes.namespaces | default (list .Release.Namespace) | uniq | toJson -}}
{{- end -}}

{{/* The fault kinds the toggles enable, as a JSON list (in the order of docs/kubernetes.md). */}}
{{- define "faultline-delegate.kubeFaults" -}}
{{- $f := .Values.kubernetes.faults -}}
{{- $kinds := list -}}
{{- if $f.podDelete }}{{ $kinds = append $kinds "pod-delete" }}{{ end -}}
{{- if $f.containerKill }}{{ $kinds = append $kinds "container-kill" }}{{ end -}}
{{- if $f.deploymentScale }}{{ $kinds = append $kinds "deployment-scale" }}{{ end -}}
{{- if $f.statefulsetScale }}{{ $kinds = append $kinds "statefulset-scale" }}{{ end -}}
{{- if $f.nodeCordon }}{{ $kinds = append $kinds "node-cordon" }}{{ end -}}
{{- if $f.nodeDrain }}{{ $kinds = append $kinds "node-drain" }}{{ end -}}
{{- if $f.podFaults }}{{ $kinds = concat $kinds (list "pod-network-loss" "pod-network-partition" "pod-network-latency" "pod-network-corrupt" "pod-network-duplicate" "pod-network-reorder" "pod-network-bandwidth" "pod-cpu-stress" "pod-memory-stress" "pod-process-kill") }}{{ end -}}
{{- toJson $kinds -}}
{{- end -}}

{{/* "true" when anything needs the Kubernetes API (a fault toggle or the probe). */}}
{{- define "faultline-delegate.usesApi" -}}
{{- if or (gt (len (include "faultline-delegate.kubeFaults" . | fromJsonArray)) 0) .Values.kubernetes.probe.enabled }}true{{ end -}}
{{- end -}}

{{/* The `--allow` entries: the operator's, then those of the Kubernetes toggles (each fault kind,
   the object kinds they change as `k8s-kind=`, the namespaces as `namespace=`). */}}
{{- define "faultline-delegate.allow" -}}
{{- $entries := .Values.allow -}}
{{- $kinds := include "faultline-delegate.kubeFaults" . | fromJsonArray -}}
{{- range $kinds }}{{ $entries = append $entries (printf "fault=%s" .) }}{{ end -}}
{{- $f := .Values.kubernetes.faults -}}
{{- if or $f.podDelete $f.containerKill $f.nodeDrain $f.podFaults }}{{ $entries = append $entries "k8s-kind=Pod" }}{{ end -}}
{{- if $f.deploymentScale }}{{ $entries = append $entries "k8s-kind=Deployment" }}{{ end -}}
{{- if $f.statefulsetScale }}{{ $entries = append $entries "k8s-kind=StatefulSet" }}{{ end -}}
{{- if or $f.nodeCordon $f.nodeDrain }}{{ $entries = append $entries "k8s-kind=Node" }}{{ end -}}
{{- if include "faultline-delegate.usesApi" . -}}
{{- range (include "faultline-delegate.namespaces" . | fromJsonArray) }}{{ $entries = append $entries (printf "namespace=%s" .) }}{{ end -}}
{{- end -}}
{{- toJson (uniq $entries) -}}
{{- end -}}

{{- define "faultline-delegate.validate" -}}
{{- if not (has .Values.mode (list "deployment" "daemonset")) -}}
{{- fail (printf "mode must be deployment or daemonset, not %q" .Values.mode) -}}
{{- end -}}
{{- if and .Values.kubernetes.faults.podFaults (ne .Values.mode "daemonset") -}}
{{- fail "kubernetes.faults.podFaults runs faults inside pods on the delegate's own node: set mode=daemonset" -}}
{{- end -}}
{{- if not (has .Values.persistence.type (list "pvc" "emptyDir")) -}}
{{- fail (printf "persistence.type must be pvc or emptyDir, not %q" .Values.persistence.type) -}}
{{- end -}}
{{- if not .Values.registration.secretName -}}
{{- fail "registration.secretName is required: the Secret holding the registration token" -}}
{{- end -}}
{{- range .Values.allow -}}
{{- if not (regexMatch "^[a-z0-9-]+=.+$" .) -}}
{{- fail (printf "allow: %q is not KIND=VALUE" .) -}}
{{- end -}}
{{- end -}}
{{- end -}}
