"""What each step of a ModelVersion's validation records: the next status, pure.

The ModelVersion controller (`handlers.modelversion`) moves a version from
Pending to Validating, then to Validated, Rejected or AwaitingApproval. Each
function here takes the status as stored (and its conditions, as the body holds
them) with the step's evidence, and returns the status the step records; a
verdict comes with the Event that tells it. People's reviews after that are
`decisions.review`. The controller writes what these return through the
controller kit, and only then acts (creates the Job, posts the Event).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from mlops_operator.api.conditions import (
    Condition,
    ConditionStatus,
    ConditionType,
    Reason,
    find_condition,
    set_conditions,
)
from mlops_operator.api.events import Event, EventType
from mlops_operator.api.gates import Gates
from mlops_operator.api.modelversion import GateResult, ModelVersionPhase, ModelVersionStatus
from mlops_operator.decisions.gates import evaluate_gates, verdict
from mlops_operator.decisions.review import awaiting_message
from mlops_operator.validator.report import CheckName, ValidationReport

__all__ = ["IMPORTED", "judged_status", "name_conflict_status", "validating_status"]

IMPORTED = (
    "not produced by a TrainingJob of this operator: nothing ties the artifact and its numbers"
    " to a training run the operator observed, so a person must approve it"
)
"""The provenance result of a version the operator did not produce."""

# The validator's checks, and the Job failing before any check reported.
_ARTIFACT_CHECKS = CheckName.ALL | {"validation"}
_MAX_REJECTION = 2000

Pair = tuple[ConditionType, ConditionStatus, Reason, str]


def _with(
    status: ModelVersionStatus,
    conditions: Sequence[Condition],
    generation: int | None,
    now: datetime,
    *pairs: Pair,
    **fields: object,
) -> ModelVersionStatus:
    updated = set_conditions(conditions, pairs, observed_generation=generation, now=now)
    return status.model_copy(update={"conditions": updated, **fields})


def validating_status(
    status: ModelVersionStatus,
    conditions: Sequence[Condition],
    *,
    generation: int | None,
    message: str,
    now: datetime,
) -> ModelVersionStatus:
    """Validating: the Job checks the artifact (`message` says against what)."""
    return _with(
        status, conditions, generation, now,
        (ConditionType.VALIDATED, ConditionStatus.UNKNOWN, Reason.VALIDATING, message),
        (ConditionType.READY, ConditionStatus.FALSE, Reason.VALIDATING, "not validated yet"),
        phase=ModelVersionPhase.VALIDATING, observed_generation=generation,
    )  # fmt: skip


def _artifact_failed(results: Sequence[GateResult]) -> bool:
    """Whether an artifact check (not a metric gate) failed."""
    return any(not r.passed and r.gate in _ARTIFACT_CHECKS for r in results)


def judged_status(
    status: ModelVersionStatus,
    conditions: Sequence[Condition],
    report: ValidationReport | str,
    gates: Gates,
    *,
    primary_metric: str,
    champions: Sequence[str],
    imported: bool,
    generation: int | None,
    now: datetime,
) -> tuple[ModelVersionStatus, Event]:
    """The verdict on the Job's `report` (or why there is none) and the Event that tells it.

    Every gate is judged on the numbers the Job measured itself. An `imported`
    version (not produced by a TrainingJob of the operator) is held for approval
    whatever its gates say.
    """
    if isinstance(report, str):
        results = [GateResult(gate="validation", passed=False, message=report)]
        measured: Mapping[str, float] = {}
    else:
        results = evaluate_gates(
            gates, primary_metric=primary_metric, report=report, champions=champions
        )
        measured = report.candidate_metrics
    if imported:
        results.append(GateResult(gate="provenance", passed=True, message=IMPORTED))
    phase = verdict(results, require_approval=gates.require_approval or imported, approval=None)
    kind = EventType.NORMAL
    if phase is ModelVersionPhase.REJECTED:
        kind = EventType.WARNING
        failed = [r for r in results if not r.passed]
        message = "; ".join(f"{r.gate}: {r.message}" for r in failed)[:_MAX_REJECTION]
        reason = Reason.ARTIFACT_INVALID if _artifact_failed(results) else Reason.GATE_FAILED
        pairs: tuple[Pair, Pair] = (
            (ConditionType.VALIDATED, ConditionStatus.FALSE, reason, message),
            (
                ConditionType.READY,
                ConditionStatus.FALSE,
                Reason.GATE_FAILED,
                "rejected: " + message,
            ),
        )
    elif phase is ModelVersionPhase.AWAITING_APPROVAL:
        message = awaiting_message(
            "every gate passed"
            + ("; the version was not produced by a TrainingJob" if imported else "")
        )
        pairs = (
            (ConditionType.VALIDATED, ConditionStatus.UNKNOWN, Reason.AWAITING_APPROVAL, message),
            (ConditionType.READY, ConditionStatus.FALSE, Reason.AWAITING_APPROVAL, message),
        )
    else:
        message = f"{len(results)} checks and gates passed"
        pairs = (
            (ConditionType.VALIDATED, ConditionStatus.TRUE, Reason.VALIDATED, message),
            (ConditionType.READY, ConditionStatus.TRUE, Reason.VALIDATED, message),
        )
    judged = _with(
        status, conditions, generation, now, *pairs,
        observed_generation=generation, phase=phase, gate_results=results,
        measured_metrics=dict(measured), validated_at=now,
    )  # fmt: skip
    return judged, Event(kind, pairs[0][2], message)


def name_conflict_status(
    status: ModelVersionStatus,
    conditions: Sequence[Condition],
    message: str,
    *,
    generation: int | None,
    now: datetime,
) -> ModelVersionStatus | None:
    """Validation waits: the Job's name is taken (`message`); None when that is recorded already."""
    current = find_condition(status.conditions, ConditionType.VALIDATED)
    if current is not None and current.reason == Reason.NAME_CONFLICT.value:
        return None
    return _with(
        status, conditions, generation, now,
        (ConditionType.VALIDATED, ConditionStatus.UNKNOWN, Reason.NAME_CONFLICT, message),
        (ConditionType.READY, ConditionStatus.FALSE, Reason.NAME_CONFLICT, message),
    )  # fmt: skip
