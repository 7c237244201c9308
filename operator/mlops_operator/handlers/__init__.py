"""Kopf registrations: one module per kind, plus Kopf's own configuration.

Importing this package registers every handler with Kopf's default registry.
Handlers stay thin: they say what to gather, what to decide (pure builders and
policies, `mlops_operator.resources`, `mlops_operator.decisions`, which return the
next status) and what to apply (through `mlops_operator.k8s`); the status and the
Events go through the controller kit (`handlers.kit`), the same way for every
kind. They keep no state of their own: what they remember between calls is in
the operator's context (`handlers.context`). They return None.
"""

from mlops_operator.handlers import (
    driftpolicy,
    lifecycle,
    modeldeployment,
    modelversion,
    trainingjob,
)

__all__ = ["driftpolicy", "lifecycle", "modeldeployment", "modelversion", "trainingjob"]
