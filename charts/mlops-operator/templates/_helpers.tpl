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

{{/*
workloads.securityContext as the JSON the operator reads (MLOPS_WORKLOAD_SECURITY_CONTEXT), every
id named: Helm drops a key set to null from the values, and an id the operator is not given
would be its default, not unset.
*/}}
{{- define "mlops-operator.workloadSecurityContext" -}}
{{- $given := .Values.workloads.securityContext | default dict -}}
{{- $ids := dict -}}
{{- range $id := list "runAsUser" "runAsGroup" "fsGroup" -}}
{{- $_ := set $ids $id (index $given $id) -}}
{{- end -}}
{{- toJson $ids -}}
{{- end -}}

{{/*
The user names the operator acts as, as a CEL list literal (JSON strings are CEL strings): its
ServiceAccount's, and governance.operatorUsers (e.g. an operator run outside the cluster).
*/}}
{{- define "mlops-operator.operatorUsers" -}}
{{- $account := printf "system:serviceaccount:%s:%s" .Release.Namespace (include "mlops-operator.serviceAccountName" .) -}}
{{- toJson (uniq (prepend .Values.governance.operatorUsers $account)) -}}
{{- end -}}

{{/*
The namespaces the admission policies guard: governance.namespaceSelector when set, else the
watched namespaces, else every namespace.
*/}}
{{- define "mlops-operator.governedNamespaces" -}}
{{- if .Values.governance.namespaceSelector -}}
{{- toYaml .Values.governance.namespaceSelector -}}
{{- else if .Values.operator.watchNamespaces -}}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: In
    values: {{ toJson .Values.operator.watchNamespaces }}
{{- else -}}
{}
{{- end -}}
{{- end -}}

{{/*
The image prefixes a TrainingJob may use, comma-separated: operator.allowedImagePrefixes, else the
folder of the chart's trainer repository (registry included): the project's own images.
*/}}
{{- define "mlops-operator.allowedImagePrefixes" -}}
{{- if .Values.operator.allowedImagePrefixes -}}
{{- join "," .Values.operator.allowedImagePrefixes -}}
{{- else -}}
{{- $registry := .Values.images.registry -}}
{{- $repository := ternary (printf "%s/%s" $registry .Values.images.trainer.repository) .Values.images.trainer.repository (ne $registry "") -}}
{{- $folder := regexReplaceAll "[^/]*$" $repository "" -}}
{{- ternary $folder (printf "%s:" $repository) (ne $folder "") -}}
{{- end -}}
{{- end -}}
