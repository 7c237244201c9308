"""ModelDeployment (``mdep``): serve a model, and move it safely from one version to the next.

The operator runs the ONNX inference server as Deployments behind one Service:
the champion, and during a rollout a challenger that gets a share of traffic
(canary) or a mirror of it (shadow) while its live metrics are analysed. A
passing challenger is promoted; a failing one is withdrawn; a champion whose
live metrics cross the rollback floors is replaced by the previous version.
The status keeps the champion, the challenger and a bounded history of every
promotion and rollback with its evidence. ``kubectl scale mdep`` and a
HorizontalPodAutoscaler work through the ``scale`` subresource.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from mlops_operator.api.fields import (
    Duration,
    Fraction,
    ModelName,
    ObjectName,
    ResourceRequirements,
    StorageUri,
)
from mlops_operator.api.gates import Gates
from mlops_operator.api.model import CamelModel, Rule
from mlops_operator.api.pods import PodOverrides
from mlops_operator.api.resource import (
    CustomResource,
    PrinterColumn,
    ResourceStatus,
    ScaleSubresource,
)

__all__ = [
    "Analysis",
    "CanarySettings",
    "CanaryStep",
    "Challenger",
    "ChallengerPhase",
    "Champion",
    "Feedback",
    "HistoryAction",
    "HistoryEntry",
    "ModelDeployment",
    "ModelDeploymentSpec",
    "ModelDeploymentStatus",
    "Monitoring",
    "PayloadLogging",
    "Promotion",
    "RollbackFloors",
    "Rollout",
    "RolloutStrategy",
    "SecretKeyRef",
    "ServerSettings",
    "ServiceMonitorSettings",
    "ShadowSettings",
]


class Promotion(StrEnum):
    """How a new validated version reaches the deployment."""

    AUTO = "Auto"
    MANUAL = "Manual"


class ServerSettings(CamelModel):
    """Tuning of the inference server."""

    cel_rules = (
        Rule(
            "!has(self.grpcPort) || self.grpcPort == 0"
            " || (self.grpcPort >= 1024 && self.grpcPort != 8080)",
            "`grpcPort` must be 0 (no gRPC endpoint), or 1024-65535 and not the HTTP port 8080",
            field_path=".grpcPort",
        ),
    )

    max_batch_size: int = Field(
        default=64,
        ge=1,
        le=4096,
        description="Largest number of rows the server groups into one ONNX run.",
    )
    batch_delay_ms: int = Field(
        default=2,
        ge=0,
        le=1000,
        description="How long the server waits to fill a batch; `0` disables batching waits.",
    )
    workers: int = Field(default=1, ge=1, le=64, description="Server worker processes per pod.")
    max_rows: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="Largest number of rows accepted in one request (HTTP 413 beyond).",
    )
    grpc_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Port of the Open Inference Protocol over gRPC, on the serving pods and as"
        " the Service's `grpc` port; unset: the operator's default (the chart's"
        " `serving.grpcPort`, 9000); `0`: no gRPC endpoint.",
    )
    timeout_ms: int = Field(
        default=5_000,
        ge=10,
        le=600_000,
        description="Per-request deadline; a slower request fails with HTTP 504.",
    )


class RolloutStrategy(StrEnum):
    """How a challenger replaces the champion."""

    RECREATE = "Recreate"
    CANARY = "Canary"
    SHADOW = "Shadow"


class CanaryStep(CamelModel):
    """One traffic step of a canary."""

    weight: int = Field(ge=1, le=100, description="Percent of requests sent to the challenger.")
    pause: Duration = Field(
        default="5m", description="How long to hold this step while analysis runs."
    )


class CanarySettings(CamelModel):
    """Traffic steps of a canary; promotion follows the last step."""

    cel_rules = (
        Rule(
            "self.steps.map(s, s.weight).isSorted()"
            " && self.steps.all(a, self.steps.exists_one(b, b.weight == a.weight))",
            "`steps` weights must be strictly increasing",
            field_path=".steps",
        ),
    )

    steps: list[CanaryStep] = Field(
        min_length=1,
        max_length=20,
        description="Steps in order, with strictly increasing weights, e.g. 10, 25, 50, 100.",
    )


class ShadowSettings(CamelModel):
    """Mirror traffic to the challenger; its responses are discarded."""

    mirror_percent: int = Field(
        default=100, ge=1, le=100, description="Percent of requests mirrored to the challenger."
    )
    duration: Duration = Field(
        default="30m", description="How long to shadow before promoting a passing challenger."
    )


class Analysis(CamelModel):
    """Live checks of the challenger during a canary or shadow; a failure withdraws it."""

    interval: Duration = Field(
        default="1m",
        description="How often the checks run during a step (or a shadow), each over the"
        " traffic since the previous one; a step ends once its `pause` is over and the checks"
        " after it pass.",
    )
    min_requests: int = Field(
        default=100,
        ge=1,
        le=10_000_000,
        description="Requests the challenger must have served since the previous check before"
        " it is judged (until then the check waits for more).",
    )
    failure_limit: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Consecutive failed intervals that withdraw the challenger.",
    )
    max_error_rate: Fraction = Field(
        default=0.01, description="Largest share of failed requests (HTTP 5xx), e.g. `0.01`."
    )
    max_p99_latency_ms: float | None = Field(
        default=None, gt=0.0, description="Largest 99th-percentile latency in milliseconds."
    )
    max_p99_latency_ratio: float | None = Field(
        default=None,
        ge=1.0,
        le=100.0,
        description="Largest p99 latency relative to the champion's, e.g. `2` for twice as slow.",
    )
    min_accuracy: Fraction | None = Field(
        default=None,
        description="Smallest realized accuracy of the challenger's judged window (needs"
        " `feedback`). The challenger waits at its step until a window of its predictions is"
        " judged (its labels reached `feedback.minLabelCoverage`); it never passes without one.",
    )
    max_prediction_psi: float | None = Field(
        default=None,
        gt=0.0,
        le=10.0,
        description="Largest PSI between the challenger's and the champion's predictions.",
    )


class Rollout(CamelModel):
    """How a new version replaces the champion."""

    cel_rules = (
        Rule(
            "self.strategy != 'Canary' || has(self.canary)",
            "`canary` must be set when `strategy` is Canary",
            field_path=".canary",
            reason="FieldValueRequired",
        ),
        Rule(
            "self.strategy == 'Canary' || !has(self.canary)",
            "`canary` must not be set unless `strategy` is Canary",
            field_path=".canary",
            reason="FieldValueForbidden",
        ),
        Rule(
            "self.strategy == 'Shadow' || !has(self.shadow)",
            "`shadow` must not be set unless `strategy` is Shadow",
            field_path=".shadow",
            reason="FieldValueForbidden",
        ),
    )

    strategy: RolloutStrategy = Field(
        default=RolloutStrategy.RECREATE,
        description="`Recreate`: switch all traffic once the new version is ready; `Canary`:"
        " shift traffic in `canary.steps` with analysis; `Shadow`: mirror traffic, then switch.",
    )
    canary: CanarySettings | None = Field(
        default=None, description="Traffic steps; required with `strategy: Canary`."
    )
    shadow: ShadowSettings | None = Field(
        default=None, description="Mirroring; defaults apply with `strategy: Shadow`."
    )
    analysis: Analysis = Field(
        default=Analysis(),
        description="Live checks of the challenger during a canary or shadow.",
    )
    auto_rollback: bool = Field(
        default=True,
        description="Withdraw a challenger that fails analysis; false pauses the rollout instead.",
    )


class RollbackFloors(CamelModel):
    """Live limits on the champion after promotion; crossing one restores the previous version."""

    cel_rules = (
        Rule(
            "has(self.maxErrorRate) || has(self.maxP99LatencyMs) || has(self.minAccuracy)",
            "at least one of `maxErrorRate`, `maxP99LatencyMs` or `minAccuracy` must be set",
        ),
    )

    window: Duration = Field(
        default="10m", description="Window the live metrics are measured over."
    )
    min_requests: int = Field(
        default=100, ge=1, le=10_000_000, description="Requests needed in the window to judge."
    )
    max_error_rate: Fraction | None = Field(
        default=None, description="Largest share of failed requests."
    )
    max_p99_latency_ms: float | None = Field(
        default=None, gt=0.0, description="Largest 99th-percentile latency in milliseconds."
    )
    min_accuracy: Fraction | None = Field(
        default=None,
        description="Smallest realized accuracy of the champion's judged window (needs"
        " `feedback`; judged by prediction time once the window's labels reached"
        " `feedback.minLabelCoverage`).",
    )


class PayloadLogging(CamelModel):
    """Record a sample of requests and predictions (training data for retraining, drift evidence)."""

    enabled: bool = Field(default=False, description="Log requests and predictions.")
    sample_rate: float = Field(
        default=0.1, gt=0.0, le=1.0, description="Share of requests logged, e.g. `0.1`."
    )
    uri: StorageUri | None = Field(
        default=None,
        description="Where the log is written; default: the operator's artifact store.",
    )


class SecretKeyRef(CamelModel):
    """One key of a Secret in the ModelDeployment's namespace."""

    name: ObjectName = Field(description="Name of the Secret.")
    key: str = Field(
        default="token",
        min_length=1,
        max_length=253,
        pattern=r"^[-._a-zA-Z0-9]+$",
        description="Key in the Secret's data.",
    )


class Feedback(CamelModel):
    """Ground truth: labels posted to `/feedback`, joined with the predictions they are for.

    Every prediction is recorded (a small Parquet row per predicted row) in the artifact
    store, whatever the payload log samples; labels may be posted to any replica at any
    time within `retention`, and an evaluator pod joins them per window by prediction
    time. A window is judged once `minLabelCoverage` of its rows are labelled, so labels
    that have not arrived never read as decay; its realized accuracy (F1, RMSE, MAE) is
    what rollback floors, canary analysis and DriftPolicy triggers read.
    """

    cel_rules = (
        Rule(
            "duration(self.window) <= duration(self.retention)",
            "`window` must not be longer than `retention`",
            field_path=".window",
        ),
        Rule(
            "duration(self.maxLabelDelay) <= duration(self.retention)",
            "`maxLabelDelay` must not be longer than `retention`",
            field_path=".maxLabelDelay",
        ),
        Rule(
            "duration(self.window) >= duration('10s')",
            "`window` must be at least 10s",
            field_path=".window",
        ),
    )

    retention: Duration = Field(
        default="168h",
        description="How long after a prediction its labels are accepted (HTTP 410 after) and"
        " its record is read; default one week.",
    )
    window: Duration = Field(
        default="1h",
        description="Length of the windows predictions are judged in, by prediction time"
        " (tumbling, aligned to multiples of it).",
    )
    min_label_coverage: float = Field(
        default=0.8,
        gt=0.0,
        le=1.0,
        description="Share of a window's predicted rows that must be labelled before the window"
        " is judged.",
    )
    max_label_delay: Duration = Field(
        default="24h",
        description="How long labels may take: a window still short of labels this long after"
        " it ended is counted as expired, never judged.",
    )
    token_secret: SecretKeyRef | None = Field(
        default=None,
        description="Require `Authorization: Bearer <token>` on `/feedback`, the token being"
        " this Secret key (you create the Secret; the serving pods read it, the operator"
        " never does). Absent: anyone who reaches the Service may post labels (labels steer"
        " realized accuracy, rollbacks and retraining).",
    )


class ServiceMonitorSettings(CamelModel):
    """A Prometheus Operator ServiceMonitor for the serving pods."""

    enabled: bool = Field(default=False, description="Create a ServiceMonitor.")
    interval: Duration = Field(default="30s", description="Scrape interval.")
    labels: dict[str, str] = Field(
        default_factory=dict,
        max_length=16,
        description="Labels the Prometheus instance selects ServiceMonitors by.",
    )


class Monitoring(CamelModel):
    """How Prometheus finds the serving pods."""

    service_monitor: ServiceMonitorSettings = Field(
        default=ServiceMonitorSettings(),
        description="ServiceMonitor (Prometheus Operator); pods also carry scrape annotations.",
    )


class ModelDeploymentSpec(CamelModel):
    """Desired state of a ModelDeployment."""

    cel_rules = (
        Rule(
            "self.promotion != 'Manual' || has(self.version)",
            "`version` must be set when `promotion` is Manual",
            field_path=".version",
            reason="FieldValueRequired",
        ),
        Rule(
            "!has(self.resources) || !has(self.podOverrides) || !has(self.podOverrides.resources)",
            "`resources` and `podOverrides.resources` must not both be set",
            field_path=".podOverrides.resources",
        ),
        Rule(
            "self.promotion != 'Auto' || !has(self.version)",
            "`version` must not be set when `promotion` is Auto: set `promotion: Manual` to pin",
            field_path=".version",
            reason="FieldValueForbidden",
        ),
        Rule(
            "!has(self.rollbackFloors) || !has(self.rollbackFloors.minAccuracy)"
            " || has(self.feedback)",
            "`rollbackFloors.minAccuracy` needs `feedback`: accuracy comes from labels joined"
            " with the predictions",
            field_path=".feedback",
            reason="FieldValueRequired",
        ),
        Rule(
            "!has(self.rollout) || !has(self.rollout.analysis)"
            " || !has(self.rollout.analysis.minAccuracy) || has(self.feedback)",
            "`rollout.analysis.minAccuracy` needs `feedback`: accuracy comes from labels joined"
            " with the predictions",
            field_path=".feedback",
            reason="FieldValueRequired",
        ),
    )

    model_name: ModelName = Field(description="Name of the model to serve.")
    promotion: Promotion = Field(
        default=Promotion.AUTO,
        description="`Auto`: roll out every new version that passes its gates; `Manual`: serve"
        " `version` and change it by editing the field (which is also how you roll back).",
    )
    version: int | None = Field(
        default=None,
        ge=1,
        description="Version to serve when `promotion` is Manual.",
    )
    replicas: int = Field(
        default=1, ge=0, le=100, description="Serving pods of the champion (`kubectl scale`)."
    )
    resources: ResourceRequirements | None = Field(
        default=None, description="Compute resources of each serving pod."
    )
    pod_overrides: PodOverrides | None = Field(
        default=None,
        description="Changes to the serving pods (placement, service account, pull secrets,"
        " resources, env, volumes), merged over the operator's defaults.",
    )
    server: ServerSettings = Field(
        default=ServerSettings(),
        description="Inference server tuning.",
    )
    rollout: Rollout = Field(
        default=Rollout(),
        description="How a new version replaces the champion.",
    )
    rollback_floors: RollbackFloors | None = Field(
        default=None, description="Live limits on the champion; crossing one rolls it back."
    )
    gates: Gates | None = Field(
        default=None,
        description="Gates for every version of this model (or that names this deployment as its"
        " `targetDeployment`), besides the version's own: applied when the version is validated"
        " (thresholds, champion comparison, approval); the thresholds again when a rollout"
        " target is chosen, so a version validated before they were set is not rolled out.",
    )
    payload_logging: PayloadLogging = Field(
        default=PayloadLogging(),
        description="Sampled request and prediction logging.",
    )
    feedback: Feedback | None = Field(
        default=None,
        description="Collect ground-truth labels by request id and judge realized performance;"
        " off when absent (`/feedback` then answers 404).",
    )
    monitoring: Monitoring = Field(
        default=Monitoring(),
        description="Prometheus integration.",
    )
    history_limit: int = Field(
        default=20, ge=1, le=100, description="Entries kept in `status.history`."
    )


class Champion(CamelModel):
    """The version serving all (or most) traffic."""

    version: int = Field(ge=1, description="Version number.")
    model_version: ObjectName = Field(description="The ModelVersion object.")
    since: datetime = Field(description="When it became champion.")


class ChallengerPhase(StrEnum):
    """Where the challenger is in its rollout."""

    STARTING = "Starting"
    SHADOWING = "Shadowing"
    CANARY = "Canary"
    PAUSED = "Paused"
    PROMOTING = "Promoting"
    ABORTING = "Aborting"


class Challenger(CamelModel):
    """The version being rolled out."""

    version: int = Field(ge=1, description="Version number.")
    model_version: ObjectName = Field(description="The ModelVersion object.")
    weight: int = Field(default=0, ge=0, le=100, description="Percent of traffic it receives.")
    step: int = Field(default=0, ge=0, description="Index of the current canary step.")
    phase: ChallengerPhase = Field(default=ChallengerPhase.STARTING, description="Rollout phase.")
    since: datetime | None = Field(default=None, description="When the current step began.")
    analyzed_at: datetime | None = Field(
        default=None, description="When the current step's traffic was last judged."
    )
    failed_analyses: int = Field(
        default=0, ge=0, description="Consecutive failed analysis intervals."
    )


class HistoryAction(StrEnum):
    """What happened to the champion."""

    DEPLOY = "Deploy"
    PROMOTE = "Promote"
    ROLLBACK = "Rollback"
    ABORT = "Abort"


class HistoryEntry(CamelModel):
    """One change of what serves, with why."""

    version: int = Field(ge=1, description="Version concerned.")
    time: datetime = Field(description="When it happened.")
    action: HistoryAction = Field(
        description="`Deploy` (first version), `Promote`, `Rollback` or `Abort` (challenger withdrawn)."
    )
    reason: str = Field(
        min_length=1, max_length=1024, description="A condition reason, e.g. `AnalysisFailed`."
    )
    evidence: dict[str, float] = Field(
        default_factory=dict,
        max_length=32,
        description="The measurements behind the decision, e.g. `{errorRate: 0.07}`.",
    )
    message: str = Field(default="", max_length=1024, description="Explanation for humans.")
    actor: str = Field(
        default="mlops-operator",
        max_length=256,
        description="Who decided: the operator, or the user who edited the spec.",
    )


class ModelDeploymentStatus(ResourceStatus):
    """Observed state: conditions `Ready`, `Progressing` and `Degraded`."""

    champion: Champion | None = Field(default=None, description="The version serving now.")
    challenger: Challenger | None = Field(default=None, description="The version rolling out.")
    replicas: int = Field(default=0, ge=0, description="Champion pods that exist.")
    ready_replicas: int = Field(default=0, ge=0, description="Champion pods that are ready.")
    selector: str = Field(
        default="", max_length=1024, description="Label selector of the champion's pods (for HPA)."
    )
    url: str | None = Field(
        default=None, max_length=2048, description="In-cluster URL of the inference endpoint."
    )
    history: list[HistoryEntry] = Field(
        default_factory=list,
        max_length=100,
        description="Promotions and rollbacks, newest first, at most `spec.historyLimit`.",
    )


class ModelDeployment(
    CustomResource,
    kind="ModelDeployment",
    plural="modeldeployments",
    short_names=("mdep",),
    printer_columns=(
        PrinterColumn("Model", "string", ".spec.modelName", "Name of the model served."),
        PrinterColumn("Champion", "integer", ".status.champion.version", "Version serving now."),
        PrinterColumn(
            "Challenger", "integer", ".status.challenger.version", "Version rolling out."
        ),
        PrinterColumn("Weight", "integer", ".status.challenger.weight", "Challenger traffic %."),
        PrinterColumn(
            "Ready", "string", '.status.conditions[?(@.type=="Ready")].status', "Serving."
        ),
        PrinterColumn("Replicas", "integer", ".status.readyReplicas", "Ready pods.", priority=1),
        PrinterColumn("URL", "string", ".status.url", "Inference endpoint.", priority=1),
        PrinterColumn("Age", "date", ".metadata.creationTimestamp", "Time since creation."),
    ),
    scale=ScaleSubresource(
        spec_replicas_path=".spec.replicas",
        status_replicas_path=".status.replicas",
        label_selector_path=".status.selector",
    ),
):
    """A ModelDeployment serves a model with the ONNX inference server and rolls new
    versions out (all at once, canary or shadow), promoting or rolling back on live metrics."""

    spec: ModelDeploymentSpec = Field(description="Desired state.")
    status: ModelDeploymentStatus | None = Field(
        default=None, description="Observed state, written by the operator."
    )
