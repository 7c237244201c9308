"""The DriftPolicy controller's Kopf handlers.

For now it checks the spec against the model and records the result in
``status.observedGeneration`` and the ``Ready`` condition. Later: a timer evaluates the triggers (`decisions`) and creates TrainingJobs.
"""

from __future__ import annotations

from typing import Any

import kopf

from mlops_operator.api.conditions import ConditionType
from mlops_operator.api.driftpolicy import DriftPolicy
from mlops_operator.handlers.reconciling import parse, reconciles, report_acceptance

__all__ = ["reconcile_drift_policy"]


@reconciles(DriftPolicy)
async def reconcile_drift_policy(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    """Reconcile a DriftPolicy after it was created, changed, or found at startup."""
    resource = parse(DriftPolicy, body, patch, ConditionType.READY)
    report_acceptance(resource, body, patch, ConditionType.READY)
