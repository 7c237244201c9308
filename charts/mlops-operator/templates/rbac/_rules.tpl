{{/*
The operator's permissions, in one place: every rule names the controller that needs it.
No wildcards; Secrets may only be created (never read). tests/unit/chart and
tests/integration/chart check both.
*/}}

{{/* Namespaced objects: granted cluster-wide (scope Cluster) or per watched namespace (Namespaced). */}}
{{- define "mlops-operator.rules.namespaced" -}}
# Kopf watches the four kinds and keeps its finalizer and annotations on them (patch).
- apiGroups: [mlops.dev]
  resources: [trainingjobs, modelversions, modeldeployments, driftpolicies]
  verbs: [get, list, watch, patch]
# Conditions, observedGeneration and the rest of status, through the status subresource.
- apiGroups: [mlops.dev]
  resources: [trainingjobs/status, modelversions/status, modeldeployments/status, driftpolicies/status]
  verbs: [get, patch]
# A finished TrainingJob creates its ModelVersion; a DriftPolicy creates TrainingJobs and
# deletes finished ones past ttlSecondsAfterFinished.
- apiGroups: [mlops.dev]
  resources: [modelversions, trainingjobs]
  verbs: [create]
- apiGroups: [mlops.dev]
  resources: [trainingjobs]
  verbs: [delete]
# Trainer and validator Jobs (server-side apply is a patch).
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, patch, delete]
# Trainer pods: read for their termination message and failure reasons.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
# Inference servers: a Deployment and a Service per served version, a Service per ModelDeployment.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch, delete]
# ModelDeployment.spec.feedback: the Secret with the key that signs request ids, created
# once with random bytes; the operator never reads it back (the serving pods mount it).
- apiGroups: [""]
  resources: [secrets]
  verbs: [create]
# The artifact PVC: created when missing, never deleted (it outlives TrainingJobs).
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [get, create]
# Events about decisions (promotion, rollback, retrain, an invalid spec).
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
# ModelDeployment.spec.monitoring.serviceMonitor (Prometheus Operator).
- apiGroups: [monitoring.coreos.com]
  resources: [servicemonitors]
  verbs: [get, list, watch, create, patch, delete]
# A ModelDeployment's HTTPRoute (rollout weights for a mesh), where the Gateway API is installed.
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, create, patch]
{{- end -}}

{{/* Cluster-scoped reads Kopf needs to notice CRDs (and, when it watches a list, namespaces). */}}
{{- define "mlops-operator.rules.cluster" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
{{- if .Values.operator.watchNamespaces }}
- apiGroups: [""]
  resources: [namespaces]
  verbs: [list, watch]
{{- end }}
{{- end -}}
