"""Pure builders: a custom resource in, the manifests of its children out.

Nothing here talks to the API server or reads the clock: a builder takes the
parsed object (and the operator's settings as plain values) and returns dicts
ready for `mlops_operator.k8s`. `common` holds what every workload shares
(labels, owner references, the restricted pod security settings, the artifact
store's volume); each other module builds one kind's children.
"""
