"""The ModelDeployment controller's Kopf handlers.

For now it checks the spec against the model and records the result in
``status.observedGeneration`` and the ``Ready`` condition. Later: build the serving Deployment and Service, apply them, and drive rollouts.
"""

from __future__ import annotations

from typing import Any

import kopf

from mlops_operator.api.conditions import ConditionType
from mlops_operator.api.modeldeployment import ModelDeployment
from mlops_operator.handlers.reconciling import parse, reconciles, report_acceptance

__all__ = ["reconcile_model_deployment"]


@reconciles(ModelDeployment)
async def reconcile_model_deployment(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    """Reconcile a ModelDeployment after it was created, changed, or found at startup."""
    resource = parse(ModelDeployment, body, patch, ConditionType.READY)
    report_acceptance(resource, body, patch, ConditionType.READY)
