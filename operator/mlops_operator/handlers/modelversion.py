"""The ModelVersion controller's Kopf handlers.

For now it checks the spec against the model and records the result in
``status.observedGeneration`` and the ``Ready`` condition. Later: validate the artifact and evaluate the gates (`decisions`).
"""

from __future__ import annotations

from typing import Any

import kopf

from mlops_operator.api.conditions import ConditionType
from mlops_operator.api.modelversion import ModelVersion
from mlops_operator.handlers.reconciling import parse, reconciles, report_acceptance

__all__ = ["reconcile_model_version"]


@reconciles(ModelVersion)
async def reconcile_model_version(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    """Reconcile a ModelVersion after it was created, changed, or found at startup."""
    resource = parse(ModelVersion, body, patch, ConditionType.READY)
    report_acceptance(resource, body, patch, ConditionType.READY)
