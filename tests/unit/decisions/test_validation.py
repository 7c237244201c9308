"""What each step of a ModelVersion's validation records (`decisions.validation`).

Aspects: Validating records the phase, the generation and the message; a report
whose gates pass validates the version (a Normal Event); a failed artifact check
rejects it as ArtifactInvalid, a failed metric gate as GateFailed (Warning Events
with the failures); no report at all rejects it; a version the operator did not
produce is held for approval whatever its gates say, with a provenance result;
gates that require approval hold it too; a name conflict is recorded once.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mlops_operator.api.conditions import ConditionStatus, ConditionType, Reason, find_condition
from mlops_operator.api.events import EventType
from mlops_operator.api.gates import Gates, MetricGate
from mlops_operator.api.modelversion import ModelVersionPhase, ModelVersionStatus
from mlops_operator.decisions.validation import (
    IMPORTED,
    judged_status,
    name_conflict_status,
    validating_status,
)
from mlops_operator.validator.report import Check, ValidationReport

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 1, tzinfo=UTC)
GATES = Gates(metrics=[MetricGate(metric="accuracy", threshold=0.9)])


def _report(accuracy: float = 0.95, *, checksum: bool = True) -> ValidationReport:
    return ValidationReport(
        checks=[Check(name="checksum", passed=checksum), Check(name="parity", passed=True)],
        rows=30,
        candidate_metrics={"accuracy": accuracy},
    )


def _judge(
    report: ValidationReport | str, gates: Gates = GATES, *, imported: bool = False
) -> tuple[ModelVersionStatus, EventType, Reason, str]:
    status, event = judged_status(
        ModelVersionStatus(),
        [],
        report,
        gates,
        primary_metric="accuracy",
        champions=[],
        imported=imported,
        generation=2,
        now=NOW,
    )
    return status, event.type, event.reason, event.message


def _validated(status: ModelVersionStatus) -> tuple[ConditionStatus, str]:
    condition = find_condition(status.conditions, ConditionType.VALIDATED)
    assert condition is not None
    return condition.status, condition.reason


def test_validating_records_the_phase_and_what_is_checked() -> None:
    status = validating_status(
        ModelVersionStatus(), [], generation=3, message="the Job checks it", now=NOW
    )
    assert status.phase is ModelVersionPhase.VALIDATING
    assert status.observed_generation == 3
    assert _validated(status) == (ConditionStatus.UNKNOWN, Reason.VALIDATING.value)
    ready = find_condition(status.conditions, ConditionType.READY)
    assert ready is not None
    assert ready.status is ConditionStatus.FALSE


def test_passing_gates_validate_the_version() -> None:
    status, kind, reason, message = _judge(_report())
    assert status.phase is ModelVersionPhase.VALIDATED
    assert (kind, reason) == (EventType.NORMAL, Reason.VALIDATED)
    assert message == f"{len(status.gate_results)} checks and gates passed"
    assert status.measured_metrics == {"accuracy": 0.95}
    assert status.validated_at == NOW
    assert status.observed_generation == 2
    assert _validated(status) == (ConditionStatus.TRUE, Reason.VALIDATED.value)


def test_a_failed_artifact_check_rejects_as_artifact_invalid() -> None:
    status, kind, reason, message = _judge(_report(checksum=False))
    assert status.phase is ModelVersionPhase.REJECTED
    assert (kind, reason) == (EventType.WARNING, Reason.ARTIFACT_INVALID)
    assert message.startswith("checksum:")
    ready = find_condition(status.conditions, ConditionType.READY)
    assert ready is not None
    assert ready.reason == Reason.GATE_FAILED.value
    assert ready.message.startswith("rejected: ")


def test_a_failed_metric_gate_rejects_as_gate_failed() -> None:
    status, kind, reason, _ = _judge(_report(accuracy=0.5))
    assert status.phase is ModelVersionPhase.REJECTED
    assert (kind, reason) == (EventType.WARNING, Reason.GATE_FAILED)
    assert _validated(status) == (ConditionStatus.FALSE, Reason.GATE_FAILED.value)


def test_no_report_rejects_with_why() -> None:
    status, _, reason, message = _judge("the validator pod left no report")
    assert status.phase is ModelVersionPhase.REJECTED
    assert reason is Reason.ARTIFACT_INVALID
    assert message == "validation: the validator pod left no report"
    assert status.measured_metrics == {}


def test_a_version_the_operator_did_not_produce_waits_for_approval() -> None:
    status, kind, reason, message = _judge(_report(), imported=True)
    assert status.phase is ModelVersionPhase.AWAITING_APPROVAL
    assert (kind, reason) == (EventType.NORMAL, Reason.AWAITING_APPROVAL)
    assert "not produced by a TrainingJob" in message
    assert status.gate_results[-1].gate == "provenance"
    assert status.gate_results[-1].message == IMPORTED


def test_gates_requiring_approval_hold_the_version() -> None:
    gates = GATES.model_copy(update={"require_approval": True})
    status, _, reason, _ = _judge(_report(), gates)
    assert status.phase is ModelVersionPhase.AWAITING_APPROVAL
    assert reason is Reason.AWAITING_APPROVAL


def test_a_name_conflict_is_recorded_once() -> None:
    recorded = name_conflict_status(ModelVersionStatus(), [], "taken", generation=1, now=NOW)
    assert recorded is not None
    assert _validated(recorded) == (ConditionStatus.UNKNOWN, Reason.NAME_CONFLICT.value)
    again = name_conflict_status(recorded, recorded.conditions, "taken", generation=1, now=NOW)
    assert again is None
