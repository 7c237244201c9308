"""The TrainingJob controller's Kopf handlers.

For now it checks the spec against the model and records the result in
``status.observedGeneration`` and the ``Succeeded`` condition. Later: build the trainer Job (`resources`), apply it, and follow it to a ModelVersion.
"""

from __future__ import annotations

from typing import Any

import kopf

from mlops_operator.api.conditions import ConditionType
from mlops_operator.api.trainingjob import TrainingJob
from mlops_operator.handlers.reconciling import parse, reconciles, report_acceptance

__all__ = ["reconcile_training_job"]


@reconciles(TrainingJob)
async def reconcile_training_job(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    """Reconcile a TrainingJob after it was created, changed, or found at startup."""
    resource = parse(TrainingJob, body, patch, ConditionType.SUCCEEDED)
    report_acceptance(resource, body, patch, ConditionType.SUCCEEDED)
