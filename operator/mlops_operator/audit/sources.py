"""The audit entries of each kind's recorded decisions (pure: from status fields to entries)."""

from __future__ import annotations

from collections.abc import Sequence

from mlops_operator.api.conditions import Reason
from mlops_operator.api.driftpolicy import LastRetrain
from mlops_operator.api.modeldeployment import HistoryEntry
from mlops_operator.api.modelversion import Review
from mlops_operator.audit.entry import AuditEntry, make_entry
from mlops_operator.decisions.review import DONE, REVIEW_REASONS

__all__ = ["deployment_entries", "retrain_entry", "review_entries"]


def deployment_entries(
    namespace: str, name: str, uid: str, history: Sequence[HistoryEntry]
) -> list[AuditEntry]:
    """The entries of a ModelDeployment's ``status.history`` (newest first), oldest first."""
    return [
        make_entry(
            kind="ModelDeployment",
            namespace=namespace,
            name=name,
            uid=uid,
            time=entry.time,
            action=entry.action.value,
            version=entry.version,
            reason=entry.reason,
            message=entry.message,
            evidence=entry.evidence,
            actor=entry.actor,
        )
        for entry in reversed(history)
    ]


def retrain_entry(namespace: str, name: str, uid: str, retrain: LastRetrain) -> AuditEntry:
    """The entry of the retrain a DriftPolicy recorded in ``status.lastRetrain``.

    Built from the status alone, so it is the same entry after a restart; the
    retrain's ``reason`` (which trigger fired, with its value) is the message.
    """
    return make_entry(
        kind="DriftPolicy",
        namespace=namespace,
        name=name,
        uid=uid,
        time=retrain.time,
        action="Retrain",
        reason=Reason.RETRAIN_TRIGGERED.value,
        message=retrain.reason,
        details={"trainingJob": retrain.training_job},
    )


def review_entries(
    namespace: str, name: str, uid: str, version: int, reviews: Sequence[Review]
) -> list[AuditEntry]:
    """The entries of a ModelVersion's ``status.reviews`` (oldest first), the reviewer as actor."""
    return [
        make_entry(
            kind="ModelVersion",
            namespace=namespace,
            name=name,
            uid=uid,
            time=review.at,
            action=review.action.value,
            version=version,
            reason=REVIEW_REASONS[review.action].value,
            message=f"{DONE[review.action]} by {review.by}",
            actor=review.by,
        )
        for review in reviews
    ]
