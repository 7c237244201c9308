"""Status conditions: the model, the stable reasons, and the rules for changing them.

Every kind reports its state as Kubernetes-style conditions with a top-level
``Ready`` (``Succeeded`` for a TrainingJob), so ``kubectl wait
--for=condition=Ready`` and Argo CD health checks work the same on all four.
Controllers change conditions only through `set_condition`, which keeps
``lastTransitionTime`` when the status does not flip (cert-manager's rule):
the time says when the state began, not when it was last confirmed.

Reasons are `Reason` members, never free strings, so dashboards, alerts and
tests can rely on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import StrEnum

from pydantic import Field

from mlops_operator.api.model import CamelModel

__all__ = [
    "Condition",
    "ConditionStatus",
    "ConditionType",
    "Reason",
    "find_condition",
    "is_condition_true",
    "set_condition",
    "set_conditions",
]


class ConditionStatus(StrEnum):
    """Whether a condition holds."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class ConditionType(StrEnum):
    """The condition types the controllers set."""

    READY = "Ready"
    """ModelVersion, ModelDeployment, DriftPolicy: the object does its job."""
    SUCCEEDED = "Succeeded"
    """TrainingJob: True once a ModelVersion was produced, False once it failed for good."""
    RUNNING = "Running"
    """TrainingJob: the trainer pod is running."""
    SUSPENDED = "Suspended"
    """TrainingJob, DriftPolicy: ``spec.suspend`` holds the work back."""
    VALIDATED = "Validated"
    """ModelVersion: the artifact and every gate have been checked (True: all passed)."""
    PROGRESSING = "Progressing"
    """ModelDeployment: a rollout is under way."""
    DEGRADED = "Degraded"
    """ModelDeployment: fewer replicas than desired, or the champion breaches its floors."""
    DRIFT_DETECTED = "DriftDetected"
    """DriftPolicy: a trigger fired at the last evaluation."""
    SOURCE_REACHABLE = "SourceReachable"
    """DriftPolicy: the metrics source answered at the last evaluation."""


class Reason(StrEnum):
    """Why a condition has its status: one CamelCase member per situation."""

    # Shared.
    INVALID_SPEC = "InvalidSpec"
    """The spec passed the API server but cannot be acted on (e.g. a reference is missing)."""
    RECONCILED = "Reconciled"
    """The children match the spec."""
    NAME_CONFLICT = "NameConflict"
    """An object the operator would create exists already and is not controlled by this one;
    the operator leaves it alone."""

    # TrainingJob.
    PENDING = "Pending"
    """The trainer Job exists and waits for its pod to start."""
    JOB_RUNNING = "JobRunning"
    """The trainer pod is running."""
    TRAINED = "Trained"
    """Training finished and the ModelVersion was created."""
    TRAINING_FAILED = "TrainingFailed"
    """The trainer exited with an error and the Job's retries are used up."""
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    """The Job ran longer than ``activeDeadlineSeconds``."""
    DATASET_UNAVAILABLE = "DatasetUnavailable"
    """The dataset could not be read (missing file, claim or payload log)."""
    STORAGE_FAILED = "StorageFailed"
    """The artifact store refused a write (full, read-only, unreachable); the message has why."""
    SUSPENDED = "Suspended"
    """``spec.suspend`` is true."""
    IMAGE_NOT_ALLOWED = "ImageNotAllowed"
    """``spec.image`` does not start with a prefix the operator's settings allow."""

    # ModelVersion.
    VALIDATING = "Validating"
    """The artifact and the gates are being checked."""
    VALIDATED = "Validated"
    """The artifact loads, its checksum matches and every gate passed."""
    ARTIFACT_INVALID = "ArtifactInvalid"
    """The artifact is missing, does not load, or its checksum differs from the spec."""
    GATE_FAILED = "GateFailed"
    """At least one gate failed; the status lists the evidence."""
    AWAITING_APPROVAL = "AwaitingApproval"
    """Every gate passed and ``requireApproval`` holds the version until someone approves it."""
    APPROVED = "Approved"
    """A person approved the version."""
    REJECTED = "Rejected"
    """A person rejected the version (final)."""
    APPROVAL_REVOKED = "ApprovalRevoked"
    """A person withdrew an approval; the version waits for approval again."""

    # ModelDeployment.
    AVAILABLE = "Available"
    """Every desired replica of the champion is ready."""
    REPLICAS_UNAVAILABLE = "ReplicasUnavailable"
    """Fewer replicas are ready than desired."""
    NO_VERSION = "NoVersion"
    """No validated ModelVersion of the model exists yet."""
    ROLLOUT_STARTED = "RolloutStarted"
    """A challenger was deployed and receives its first traffic (or mirror)."""
    CANARY_STEP = "CanaryStep"
    """The challenger passed analysis and moved to the next traffic step."""
    PROMOTED = "Promoted"
    """The challenger became the champion."""
    ANALYSIS_FAILED = "AnalysisFailed"
    """The challenger's live metrics failed the analysis; it was withdrawn."""
    ROLLED_BACK = "RolledBack"
    """The champion breached a rollback floor and the previous version was restored."""
    FLOOR_BREACHED = "FloorBreached"
    """The champion's live metrics cross a rollback floor and no earlier version exists."""
    ARTIFACT_REFUSED = "ArtifactRefused"
    """A serving pod refused to load its version's artifact (its sha256 is not the one the
    ModelVersion registers, or it does not load)."""
    VERSION_WITHDRAWN = "VersionWithdrawn"
    """The champion's ModelVersion is no longer Validated (rejected or its approval revoked)."""

    # DriftPolicy.
    NO_DRIFT = "NoDrift"
    """The last evaluation found every trigger below its threshold."""
    DRIFT_DETECTED = "DriftDetected"
    """A trigger crossed its threshold at the last evaluation."""
    RETRAIN_TRIGGERED = "RetrainTriggered"
    """A TrainingJob was created from the policy's template."""
    COOLDOWN = "Cooldown"
    """A trigger fired but the last retrain is more recent than ``cooldown``."""
    BUDGET_EXHAUSTED = "BudgetExhausted"
    """A trigger fired but the retrain budget of the period is used up."""
    RETRAIN_RUNNING = "RetrainRunning"
    """A trigger fired but a retrain started by this policy is still running."""
    INSUFFICIENT_SAMPLES = "InsufficientSamples"
    """Too few samples in the window to decide."""
    SOURCE_REACHABLE = "SourceReachable"
    """The metrics source answered."""
    SOURCE_UNREACHABLE = "SourceUnreachable"
    """The metrics source (Prometheus or the pods) did not answer."""
    TARGET_NOT_FOUND = "TargetNotFound"
    """The ModelDeployment the policy watches does not exist (yet)."""
    INVALID_SCHEDULE = "InvalidSchedule"
    """``triggers.schedule`` passed admission but can never fire (a reversed range, 30 February)."""
    PROMETHEUS_REQUIRED = "PrometheusRequired"
    """Custom PromQL triggers are set but no Prometheus is configured to run them."""
    PROMETHEUS_NOT_ALLOWED = "PrometheusNotAllowed"
    """``spec.prometheus.url`` is not in the operator's allow-list; nothing was fetched."""
    SCRAPE_TARGET_REFUSED = "ScrapeTargetRefused"
    """A serving pod's address or scrape annotations do not make a valid URL; it is not scraped."""


class Condition(CamelModel):
    """One aspect of the object's state (the shape of Kubernetes' metav1.Condition)."""

    type: str = Field(
        min_length=1,
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
        description="Type of the condition in CamelCase, e.g. `Ready`.",
    )
    status: ConditionStatus = Field(
        description="Whether the condition holds: True, False or Unknown."
    )
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="Why the condition has this status: a stable CamelCase word for machines.",
    )
    message: str = Field(
        default="", max_length=32768, description="Details for humans; may be empty."
    )
    last_transition_time: datetime = Field(
        description="When the status last changed (not when it was last confirmed)."
    )
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="The `metadata.generation` the condition was computed from.",
    )


def find_condition(conditions: Sequence[Condition], type_: str) -> Condition | None:
    """The condition of the given type, if present."""
    return next((c for c in conditions if c.type == type_), None)


def is_condition_true(conditions: Sequence[Condition], type_: str) -> bool:
    """Whether the condition of the given type is present and True."""
    found = find_condition(conditions, type_)
    return found is not None and found.status is ConditionStatus.TRUE


def set_condition(
    conditions: Sequence[Condition],
    *,
    type_: str,
    status: ConditionStatus,
    reason: Reason,
    message: str,
    observed_generation: int | None,
    now: datetime,
) -> list[Condition]:
    """A copy of ``conditions`` with the condition of ``type_`` set.

    ``lastTransitionTime`` becomes ``now`` only when the condition is new or its
    status flips; a new reason or message alone keeps the old time. The order of
    the other conditions is kept and a new type is appended.
    """
    previous = find_condition(conditions, type_)
    since = now if previous is None or previous.status != status else previous.last_transition_time
    updated = Condition(
        type=type_,
        status=status,
        reason=reason.value,
        message=message,
        last_transition_time=since,
        observed_generation=observed_generation,
    )
    if previous is None:
        return [*conditions, updated]
    return [updated if c.type == type_ else c for c in conditions]


def set_conditions(
    conditions: Sequence[Condition],
    changes: Iterable[tuple[str, ConditionStatus, Reason, str]],
    *,
    observed_generation: int | None,
    now: datetime,
) -> list[Condition]:
    """`set_condition` for each ``(type, status, reason, message)`` of `changes`, in order."""
    result = list(conditions)
    for type_, status, reason, message in changes:
        result = set_condition(
            result,
            type_=type_,
            status=status,
            reason=reason,
            message=message,
            observed_generation=observed_generation,
            now=now,
        )
    return result
