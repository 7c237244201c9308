"""People's decisions on a ModelVersion, from annotations to status (pure).

Aspects: an approval moves a held version to Validated and records who and when; a rejection
of a held or Validated version is final and wins over an approval; removing an approval puts an
approved version back on hold, naming who revoked it; a version the gates rejected, or one
validated without needing approval, ignores an approval annotation; each decision appends one
review and sets both conditions with its reason.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mlops_operator.api.conditions import find_condition
from mlops_operator.api.metadata import (
    APPROVED_BY_ANNOTATION,
    REJECTED_BY_ANNOTATION,
    REVOKED_BY_ANNOTATION,
)
from mlops_operator.api.modelversion import (
    Approval,
    ModelVersionPhase,
    ModelVersionStatus,
    ReviewAction,
)
from mlops_operator.decisions.review import apply_review, pending_review

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
HELD = ModelVersionPhase.AWAITING_APPROVAL.value
VALIDATED = ModelVersionPhase.VALIDATED.value


@pytest.mark.parametrize(
    ("phase", "approved", "annotations", "expected"),
    [
        (HELD, False, {APPROVED_BY_ANNOTATION: "alice"}, (ReviewAction.APPROVE, "alice")),
        (HELD, False, {}, None),
        (
            HELD,
            False,
            {APPROVED_BY_ANNOTATION: "alice", REJECTED_BY_ANNOTATION: "bob"},
            (ReviewAction.REJECT, "bob"),
        ),
        (VALIDATED, True, {APPROVED_BY_ANNOTATION: "alice"}, None),
        (VALIDATED, True, {REVOKED_BY_ANNOTATION: "carol"}, (ReviewAction.REVOKE, "carol")),
        (VALIDATED, True, {}, (ReviewAction.REVOKE, "unknown")),
        (VALIDATED, False, {}, None),  # validated without approval: nothing to revoke
        (VALIDATED, False, {APPROVED_BY_ANNOTATION: "alice"}, None),
        (VALIDATED, False, {REJECTED_BY_ANNOTATION: "bob"}, (ReviewAction.REJECT, "bob")),
        (ModelVersionPhase.REJECTED.value, False, {APPROVED_BY_ANNOTATION: "alice"}, None),
        (ModelVersionPhase.VALIDATING.value, False, {APPROVED_BY_ANNOTATION: "alice"}, None),
        (None, False, {APPROVED_BY_ANNOTATION: "alice"}, None),
    ],
)
def test_the_pending_decision(
    phase: str | None,
    approved: bool,
    annotations: dict[str, str],
    expected: tuple[ReviewAction, str] | None,
) -> None:
    assert pending_review(phase, approved, annotations) == expected


def _held() -> ModelVersionStatus:
    return ModelVersionStatus(phase=ModelVersionPhase.AWAITING_APPROVAL)


def test_approve_then_revoke_then_reject() -> None:
    approved, message = apply_review(_held(), ReviewAction.APPROVE, "alice", now=NOW, generation=1)
    assert message == "approved by alice"
    assert approved.phase is ModelVersionPhase.VALIDATED
    assert approved.approval == Approval(by="alice", at=NOW)
    for kind in ("Validated", "Ready"):
        condition = find_condition(approved.conditions, kind)
        assert condition is not None
        assert (condition.status.value, condition.reason) == ("True", "Approved")

    revoked, message = apply_review(approved, ReviewAction.REVOKE, "carol", now=NOW, generation=1)
    assert revoked.phase is ModelVersionPhase.AWAITING_APPROVAL
    assert revoked.approval is None
    assert message.startswith("approval revoked by carol; waiting for approval")
    ready = find_condition(revoked.conditions, "Ready")
    assert ready is not None
    assert (ready.status.value, ready.reason) == ("False", "ApprovalRevoked")

    rejected, _ = apply_review(revoked, ReviewAction.REJECT, "bob", now=NOW, generation=1)
    assert rejected.phase is ModelVersionPhase.REJECTED
    assert [(r.action, r.by) for r in rejected.reviews] == [
        (ReviewAction.APPROVE, "alice"),
        (ReviewAction.REVOKE, "carol"),
        (ReviewAction.REJECT, "bob"),
    ]
    validated = find_condition(rejected.conditions, "Validated")
    assert validated is not None
    assert (validated.status.value, validated.reason) == ("False", "Rejected")
