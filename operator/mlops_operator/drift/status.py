"""A DriftPolicy's status from one decision: pure, so the controller only writes it.

Conditions: ``SourceReachable`` (did the metrics answer), ``DriftDetected`` (did a
trigger cross its threshold; its reason says what the chain did about it) and
``Ready`` (the policy is evaluating). Times are whole seconds, as Kubernetes
writes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from mlops_operator.api.conditions import Condition, ConditionStatus, ConditionType, Reason
from mlops_operator.api.conditions import set_condition as _set
from mlops_operator.api.driftpolicy import DriftPolicy, EvaluationRecord, LastRetrain
from mlops_operator.decisions.drift import Decision, Retrain

__all__ = ["KEPT_EVALUATIONS", "evaluated_status", "halted_status", "recorded_evaluations"]

KEPT_EVALUATIONS = 20
"""Past evaluations kept in the status (`status.evaluations`), newest first."""
_KEPT_FEATURES = 8
_DIGITS = 4

_DRIFT_STATUS = {
    Reason.NO_DRIFT: ConditionStatus.FALSE,
    Reason.INSUFFICIENT_SAMPLES: ConditionStatus.FALSE,
    Reason.SOURCE_UNREACHABLE: ConditionStatus.UNKNOWN,
}


def _dump(conditions: Sequence[Condition]) -> list[dict[str, Any]]:
    return [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in conditions]


def _last_retrain(retrains: Sequence[Retrain]) -> LastRetrain | None:
    latest = max(retrains, key=lambda r: r.created, default=None)
    if latest is None:
        return None
    return LastRetrain(
        time=latest.created,
        reason=latest.reason or "unknown",
        training_job=latest.name,
        resulting_version=latest.model_version,
    )


def recorded_evaluations(
    previous: Sequence[Mapping[str, Any]],
    decision: Decision,
    now: datetime,
    feature_psi: Mapping[str, float],
) -> list[dict[str, Any]]:
    """`previous` (``status.evaluations``) with this evaluation first, cut to `KEPT_EVALUATIONS`.

    Values are rounded to four decimals and only the most drifted features are kept:
    the record feeds a chart, and the status must stay short enough to read.
    """
    top = sorted(feature_psi.items(), key=lambda item: -item[1])[:_KEPT_FEATURES]
    record = EvaluationRecord(
        time=now,
        values={t.name: round(t.value, _DIGITS) for t in decision.triggers if t.value is not None},
        feature_psi={name: round(value, _DIGITS) for name, value in top},
    )
    kept = [record]
    for raw in previous:
        try:
            kept.append(EvaluationRecord.model_validate(raw))
        except ValidationError:
            continue  # written by another version of the operator: dropped
    kept = kept[:KEPT_EVALUATIONS]
    return [r.model_dump(mode="json", by_alias=True) for r in kept]


def evaluated_status(
    policy: DriftPolicy,
    conditions: Sequence[Condition],
    decision: Decision,
    retrains: Sequence[Retrain],
    now: datetime,
    note: str = "",
    evaluations: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The status after an evaluation; `retrains` includes one created by this decision.

    `evaluations` is ``status.evaluations`` with this one already recorded
    (`recorded_evaluations`); left out, the stored ones are kept as they are.
    """
    generation = policy.generation
    reachable = decision.source_reachable
    updated = _set(
        conditions,
        type_=ConditionType.SOURCE_REACHABLE,
        status=ConditionStatus.TRUE if reachable else ConditionStatus.FALSE,
        reason=Reason.SOURCE_REACHABLE if reachable else Reason.SOURCE_UNREACHABLE,
        message=(note or "the metrics source answered") if reachable else decision.message,
        observed_generation=generation,
        now=now,
    )
    updated = _set(
        updated,
        type_=ConditionType.DRIFT_DETECTED,
        status=_DRIFT_STATUS.get(decision.reason, ConditionStatus.TRUE),
        reason=decision.reason,
        message=decision.message,
        observed_generation=generation,
        now=now,
    )
    ready = (ConditionStatus.TRUE, Reason.RECONCILED, "")
    if decision.schedule_error is not None:
        ready = (ConditionStatus.FALSE, Reason.INVALID_SCHEDULE, decision.schedule_error + "; ")
    elif decision.unrunnable:
        ready = (ConditionStatus.FALSE, Reason.PROMETHEUS_REQUIRED, decision.unrunnable + "; ")
    updated = _set(
        updated,
        type_=ConditionType.READY,
        status=ready[0],
        reason=ready[1],
        message=f"{ready[2]}evaluating every {policy.spec.interval} over {policy.spec.window}",
        observed_generation=generation,
        now=now,
    )
    last = _last_retrain(retrains)
    return {
        "observedGeneration": generation,
        "conditions": _dump(updated),
        "lastEvaluationTime": now.isoformat().replace("+00:00", "Z"),
        "triggers": [t.model_dump(mode="json", by_alias=True) for t in decision.triggers],
        "headline": (
            decision.headline.model_dump(mode="json", by_alias=True) if decision.headline else None
        ),
        "lastRetrain": last.model_dump(mode="json", by_alias=True, exclude_none=True)
        if last
        else None,
        "retrainsInPeriod": decision.retrains_in_period,
    } | ({"evaluations": list(evaluations)} if evaluations else {})


def halted_status(
    policy: DriftPolicy,
    conditions: Sequence[Condition],
    reason: Reason,
    message: str,
    now: datetime,
) -> dict[str, Any]:
    """The status of a policy that does not evaluate: suspended, or its target is missing."""
    updated = _set(
        conditions,
        type_=ConditionType.READY,
        status=ConditionStatus.FALSE,
        reason=reason,
        message=message,
        observed_generation=policy.generation,
        now=now,
    )
    suspended = reason is Reason.SUSPENDED
    updated = _set(
        updated,
        type_=ConditionType.SUSPENDED,
        status=ConditionStatus.TRUE if suspended else ConditionStatus.FALSE,
        reason=Reason.SUSPENDED if suspended else Reason.RECONCILED,
        message="spec.suspend is true" if suspended else "spec.suspend is false",
        observed_generation=policy.generation,
        now=now,
    )
    return {"observedGeneration": policy.generation, "conditions": _dump(updated)}
