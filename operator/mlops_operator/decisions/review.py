"""People's decisions on a ModelVersion: approve, reject, revoke an approval (pure).

The decisions arrive as annotations (`mlops_operator.api.governance`) that the
API server admitted only from a user holding the verb and only naming that very
user, so the name is the authenticated one. This module turns the annotations
and the recorded status into the next status:

- ``rejected-by`` on a version that is held for approval or Validated makes it
  Rejected for good (a deployment withdraws it);
- ``approved-by`` on a version held for approval makes it Validated;
- ``approved-by`` removed from an approved version (with ``revoked-by`` naming
  who removed it) puts it back to AwaitingApproval.

A version the gates rejected stays rejected whatever is annotated. Each decision
is appended to ``status.reviews``, which the audit log copies.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mlops_operator.api.conditions import ConditionStatus, ConditionType, Reason, set_conditions
from mlops_operator.api.metadata import (
    APPROVED_BY_ANNOTATION,
    REJECTED_BY_ANNOTATION,
    REVOKED_BY_ANNOTATION,
)
from mlops_operator.api.modelversion import (
    Approval,
    ModelVersionPhase,
    ModelVersionStatus,
    Review,
    ReviewAction,
)

__all__ = [
    "DONE",
    "MAX_REVIEWS",
    "REVIEW_REASONS",
    "apply_review",
    "awaiting_message",
    "pending_review",
]

MAX_REVIEWS = 32
"""Reviews kept in the status (the audit log keeps every one)."""

_REVIEWABLE = (ModelVersionPhase.AWAITING_APPROVAL.value, ModelVersionPhase.VALIDATED.value)


def awaiting_message(reason: str) -> str:
    """The message of a version held for approval: why, and how to approve it."""
    return (
        f"{reason}; waiting for approval: a user holding the `approve` verb on modelversions"
        f" (the approver role, `<release>-approver`) sets {APPROVED_BY_ANNOTATION} to their own user name"
        " (`mlops approve`)"
    )


def pending_review(
    phase: str | None, approved: bool, annotations: Mapping[str, str]
) -> tuple[ReviewAction, str] | None:
    """The decision the annotations ask for that the status does not show yet, and by whom.

    `phase` and `approved` (whether ``status.approval`` is set) are the recorded status.
    """
    if phase not in _REVIEWABLE:
        return None
    rejected_by = annotations.get(REJECTED_BY_ANNOTATION)
    if rejected_by:
        return ReviewAction.REJECT, rejected_by
    approved_by = annotations.get(APPROVED_BY_ANNOTATION)
    if phase == ModelVersionPhase.AWAITING_APPROVAL.value and approved_by:
        return ReviewAction.APPROVE, approved_by
    if phase == ModelVersionPhase.VALIDATED.value and approved and not approved_by:
        return ReviewAction.REVOKE, annotations.get(REVOKED_BY_ANNOTATION) or "unknown"
    return None


REVIEW_REASONS = {
    ReviewAction.APPROVE: Reason.APPROVED,
    ReviewAction.REJECT: Reason.REJECTED,
    ReviewAction.REVOKE: Reason.APPROVAL_REVOKED,
}
"""The condition reason (and Event reason) of each decision."""
_OUTCOMES = {
    ReviewAction.APPROVE: (ModelVersionPhase.VALIDATED, ConditionStatus.TRUE),
    ReviewAction.REJECT: (ModelVersionPhase.REJECTED, ConditionStatus.FALSE),
    ReviewAction.REVOKE: (ModelVersionPhase.AWAITING_APPROVAL, ConditionStatus.UNKNOWN),
}
DONE = {  # what each decision did, in the past tense (Events, audit log)
    ReviewAction.APPROVE: "approved",
    ReviewAction.REJECT: "rejected",
    ReviewAction.REVOKE: "approval revoked",
}


def apply_review(
    status: ModelVersionStatus,
    action: ReviewAction,
    by: str,
    *,
    now: datetime,
    generation: int | None,
) -> tuple[ModelVersionStatus, str]:
    """The status after `by`'s decision, and the message for its Event."""
    phase, validated = _OUTCOMES[action]
    reason = REVIEW_REASONS[action]
    message = f"{DONE[action]} by {by}"
    if action is ReviewAction.REVOKE:
        message = awaiting_message(message)
    ready = ConditionStatus.TRUE if validated is ConditionStatus.TRUE else ConditionStatus.FALSE
    conditions = set_conditions(
        status.conditions,
        [
            (ConditionType.VALIDATED, validated, reason, message),
            (ConditionType.READY, ready, reason, message),
        ],
        observed_generation=generation,
        now=now,
    )
    reviews = [*status.reviews, Review(action=action, by=by, at=now)][-MAX_REVIEWS:]
    update: dict[str, Any] = {
        "phase": phase,
        "conditions": conditions,
        "reviews": reviews,
        "approval": Approval(by=by, at=now) if action is ReviewAction.APPROVE else None,
    }
    return status.model_copy(update=update), message
