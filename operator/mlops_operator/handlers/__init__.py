"""Kopf registrations: one module per kind, plus Kopf's own configuration.

Importing this package registers every handler with Kopf's default registry.
Handlers stay thin: they parse the body into its model, call pure builders and
policies (`mlops_operator.resources`, `mlops_operator.decisions`), apply the
result through `mlops_operator.k8s`, and write status; they return None.
"""

from mlops_operator.handlers import (
    driftpolicy,
    lifecycle,
    modeldeployment,
    modelversion,
    trainingjob,
)

__all__ = ["driftpolicy", "lifecycle", "modeldeployment", "modelversion", "trainingjob"]
