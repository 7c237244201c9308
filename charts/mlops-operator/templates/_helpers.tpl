{{/* The release's full name: the release name, or "<release>-mlops-operator", cut to 63. */}}
{{- define "mlops-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "mlops-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "mlops-operator.labels" -}}
{{ include "mlops-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: mlops-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "mlops-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mlops-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* An image reference: (dict "root" $ "image" .Values.images.trainer). */}}
{{- define "mlops-operator.image" -}}
{{- $image := .image -}}
{{- $registry := .root.Values.images.registry -}}
{{- $repository := ternary (printf "%s/%s" $registry $image.repository) $image.repository (ne $registry "") -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (default .root.Chart.AppVersion $image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
One workload's pod defaults as the JSON the operator reads (MLOPS_<WORKLOAD>_POD), with the
chart's imagePullSecrets added to the workload's own.
*/}}
{{- define "mlops-operator.workloadPod" -}}
{{- $pod := deepCopy (index .root.Values.workloads .workload | default dict) -}}
{{- with .root.Values.imagePullSecrets -}}
{{- $_ := set $pod "imagePullSecrets" (concat ($pod.imagePullSecrets | default list) .) -}}
{{- end -}}
{{- toJson $pod -}}
{{- end -}}
