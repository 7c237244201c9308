"""DriftPolicy (``dp``): watch a ModelDeployment and retrain when its data or quality drifts.

Every `interval`, and at each time of its schedule, the operator evaluates the triggers over
the last `window`
(feature and prediction drift as PSI against the training distribution), the
target's realized accuracy or RMSE (labels joined with predictions, judged by
prediction time once enough labels arrived), its estimated accuracy before labels
(CBPE), custom PromQL and a cron schedule.
When one fires on `consecutiveBreaches` evaluations in a row, and the cooldown
and the budget allow, it creates a TrainingJob from `retrain.template`; the
new version then goes through the same gates and rollout as any other.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field

from mlops_operator.api.durations import parse_duration
from mlops_operator.api.fields import ColumnName, Duration, Fraction, ObjectName
from mlops_operator.api.gates import ComparisonOp
from mlops_operator.api.model import CamelModel, Rule, field_rules
from mlops_operator.api.resource import CustomResource, PrinterColumn, ResourceStatus
from mlops_operator.api.schedules import SCHEDULE_MESSAGE, SCHEDULE_PATTERN
from mlops_operator.api.trainingjob import TrainingJobTemplate

__all__ = [
    "AccuracyTrigger",
    "Budget",
    "CustomTrigger",
    "DriftAction",
    "DriftPolicy",
    "DriftPolicySpec",
    "DriftPolicyStatus",
    "EstimatedAccuracyTrigger",
    "EvaluationRecord",
    "FeatureDriftTrigger",
    "LastRetrain",
    "PredictionDriftTrigger",
    "PrometheusSource",
    "Retrain",
    "RmseTrigger",
    "TriggerState",
    "Triggers",
]

_SCHEDULE_RULE = Rule(
    "self.matches(" + repr(SCHEDULE_PATTERN) + ")", SCHEDULE_MESSAGE, reason="FieldValueInvalid"
)


def _check_schedule(expression: str) -> str:
    if not re.fullmatch(SCHEDULE_PATTERN, expression):
        raise ValueError(SCHEDULE_MESSAGE)
    return expression


Schedule = Annotated[
    str,
    Field(max_length=128, json_schema_extra=field_rules(_SCHEDULE_RULE)),
    AfterValidator(_check_schedule),
]
"""A cron expression (`mlops_operator.api.schedules`), checked the same way on both sides."""


class FeatureDriftTrigger(CamelModel):
    """Population stability index of each input feature against its training distribution."""

    psi_threshold: float = Field(
        default=0.25,
        gt=0.0,
        le=10.0,
        description="A feature drifts when its PSI reaches this (0.1 moderate, 0.25 major shift).",
    )
    features: list[ColumnName] | None = Field(
        default=None,
        max_length=1000,
        description="Features to watch; default: all.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    min_samples: int = Field(
        default=1000, ge=1, le=100_000_000, description="Requests needed in the window to judge."
    )
    min_drifted_share: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description="Fire when at least this share of the watched features drift.",
    )


class PredictionDriftTrigger(CamelModel):
    """PSI of the model's predictions against their training distribution."""

    psi_threshold: float = Field(
        default=0.25, gt=0.0, le=10.0, description="Fire when the prediction PSI reaches this."
    )
    min_samples: int = Field(
        default=1000, ge=1, le=100_000_000, description="Predictions needed in the window."
    )


class AccuracyTrigger(CamelModel):
    """Realized accuracy from labels joined with predictions (classification).

    Read from the target's evaluator: its judged window, by prediction time, the newest
    whose label coverage reached the target's `feedback.minLabelCoverage` (so labels
    that have not arrived never read as decay); the target needs `spec.feedback`.
    """

    floor: Fraction = Field(description="Fire when realized accuracy falls below this.")
    min_samples: int = Field(
        default=100,
        ge=1,
        le=100_000_000,
        description="Labelled rows needed in the judged window.",
    )


class RmseTrigger(CamelModel):
    """Realized RMSE from labels joined with predictions (regression); read like `accuracy`."""

    ceiling: float = Field(gt=0.0, description="Fire when realized RMSE rises above this.")
    min_samples: int = Field(
        default=100,
        ge=1,
        le=100_000_000,
        description="Labelled rows needed in the judged window.",
    )


class EstimatedAccuracyTrigger(CamelModel):
    """Accuracy estimated before labels arrive (CBPE), from the model's calibrated confidence.

    The mean, over the target's newest window of predictions, of the calibrated
    probability that each prediction is right (the calibration is fitted by the trainer
    on held-out rows); valid under covariate shift. The target needs `spec.feedback`.
    """

    floor: Fraction = Field(description="Fire when estimated accuracy falls below this.")
    min_samples: int = Field(
        default=100,
        ge=1,
        le=100_000_000,
        description="Predicted rows needed in the newest window.",
    )


class CustomTrigger(CamelModel):
    """A PromQL query whose value is compared with a threshold."""

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="Name of the trigger, unique in the policy.",
    )
    query: str = Field(
        min_length=1,
        max_length=4096,
        description="PromQL returning one number; `$window` is replaced by `spec.window`.",
    )
    op: ComparisonOp = Field(default=ComparisonOp.GT, description="Fire when `value op threshold`.")
    threshold: float = Field(description="The value compared with.")


class Triggers(CamelModel):
    """What starts a retrain; at least one must be set."""

    cel_rules = (
        Rule(
            "has(self.featureDrift) || has(self.predictionDrift) || has(self.accuracy)"
            " || has(self.rmse) || has(self.estimatedAccuracy)"
            " || (has(self.custom) && size(self.custom) > 0) || has(self.schedule)",
            "at least one trigger must be set",
        ),
        Rule(
            "!(has(self.accuracy) && has(self.rmse))",
            "`accuracy` and `rmse` must not both be set: a model is a classifier or a regressor",
            field_path=".rmse",
            reason="FieldValueForbidden",
        ),
        Rule(
            "!(has(self.estimatedAccuracy) && has(self.rmse))",
            "`estimatedAccuracy` is for classifiers and `rmse` for regressors: not both",
            field_path=".rmse",
            reason="FieldValueForbidden",
        ),
    )

    feature_drift: FeatureDriftTrigger | None = Field(
        default=None, description="Input feature drift."
    )
    prediction_drift: PredictionDriftTrigger | None = Field(
        default=None, description="Prediction drift."
    )
    accuracy: AccuracyTrigger | None = Field(
        default=None, description="Realized accuracy decay (classification)."
    )
    rmse: RmseTrigger | None = Field(
        default=None, description="Realized error growth (regression)."
    )
    estimated_accuracy: EstimatedAccuracyTrigger | None = Field(
        default=None, description="Estimated accuracy decay before labels arrive (CBPE)."
    )
    custom: list[CustomTrigger] | None = Field(
        default=None,
        max_length=16,
        description="PromQL triggers.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    schedule: Schedule | None = Field(
        default=None,
        description="Retrain on a cron schedule (5 fields, UTC) regardless of drift, e.g."
        " `0 3 * * 0`; cooldown and budget still apply. The policy is also evaluated at each"
        " of its times, so it fires then, not at the next `interval`. A schedule the API"
        " server admits but that can never fire (a reversed range, 30 February) sets `Ready`"
        " to False with reason `InvalidSchedule`.",
    )


class Budget(CamelModel):
    """At most `count` retrains per `period`."""

    cel_rules = (
        Rule(
            "duration(self.period) >= duration('1m')",
            "`period` must be at least 1m",
            field_path=".period",
        ),
    )

    count: int = Field(default=1, ge=1, le=100, description="Retrains allowed per period.")
    period: Duration = Field(default="24h", description="Length of the sliding period.")


class DriftAction(StrEnum):
    """What a fired trigger does."""

    RETRAIN = "Retrain"
    ALERT = "Alert"


class Retrain(CamelModel):
    """The TrainingJob created when a trigger fires."""

    cel_rules = (
        Rule(
            "self.useLoggedData || has(self.template.dataset)",
            "`template.dataset` must be set unless `useLoggedData` is true",
            field_path=".template.dataset",
            reason="FieldValueRequired",
        ),
        Rule(
            "!has(self.loggedDataSample) || self.useLoggedData",
            "`loggedDataSample` needs `useLoggedData`",
            field_path=".loggedDataSample",
            reason="FieldValueForbidden",
        ),
    )

    template: TrainingJobTemplate = Field(description="Spec of the TrainingJob to create.")
    use_logged_data: bool = Field(
        default=False,
        description="Train on the target's payload log over the policy's `window`, joined with"
        " its labels (`dataset.fromPayloadLog` of the target): alone when `template.dataset` is"
        " absent, else combined with it (`dataset.sources`: the template's data, then the"
        " logged window), so classes rare in the window are not forgotten.",
    )
    logged_data_sample: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description="With `useLoggedData` and `template.dataset`: the share of the template's"
        " data kept beside the logged window (default all of it).",
    )


class PrometheusSource(CamelModel):
    """Where the live metrics come from."""

    url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://\S+$",
        description="Prometheus base URL; default: scrape the serving pods directly.",
    )
    timeout_seconds: int = Field(
        default=10, ge=1, le=300, description="Timeout of one query or scrape."
    )


class DriftPolicySpec(CamelModel):
    """Desired behaviour of a DriftPolicy."""

    cel_rules = (
        Rule(
            "duration(self.cooldown) >= duration(self.interval)",
            "`cooldown` must not be shorter than `interval`",
            field_path=".cooldown",
        ),
        Rule(
            "duration(self.window) >= duration(self.interval)",
            "`window` must not be shorter than `interval`",
            field_path=".window",
        ),
        Rule(
            "duration(self.interval) >= duration('10s')",
            "`interval` must be at least 10s",
            field_path=".interval",
        ),
        Rule(
            "self.action != 'Retrain' || has(self.retrain)",
            "`retrain` must be set when `action` is Retrain",
            field_path=".retrain",
            reason="FieldValueRequired",
        ),
    )

    deployment: ObjectName = Field(description="The ModelDeployment to watch.")
    interval: Duration = Field(
        default="5m",
        description="How often to evaluate (at least 10s); also at each time of"
        " `triggers.schedule`.",
    )
    window: Duration = Field(
        default="1h", description="Time range each evaluation looks back over."
    )
    triggers: Triggers = Field(description="What starts a retrain.")
    consecutive_breaches: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Evaluations in a row a trigger must fire before acting (hysteresis).",
    )
    cooldown: Duration = Field(
        default="24h", description="Least time between two retrains; not shorter than `interval`."
    )
    budget: Budget = Field(
        default=Budget(),
        description="Most retrains per period.",
    )
    action: DriftAction = Field(
        default=DriftAction.RETRAIN,
        description="`Retrain`: create a TrainingJob; `Alert`: only report (conditions, Events).",
    )
    retrain: Retrain | None = Field(
        default=None, description="What to train; required with `action: Retrain`."
    )
    prometheus: PrometheusSource = Field(
        default=PrometheusSource(),
        description="Where live metrics come from.",
    )
    suspend: bool = Field(default=False, description="Stop evaluating until set back to false.")

    @property
    def interval_seconds(self) -> float:
        """`interval` in seconds: the one place it is parsed (the daemon's period, the start of
        a first schedule window, the retrain's name)."""
        return parse_duration(self.interval)


class TriggerState(CamelModel):
    """The last evaluation of one trigger."""

    name: str = Field(
        min_length=1,
        max_length=80,
        description="`featureDrift`, `predictionDrift`, `accuracy`, `rmse`, `estimatedAccuracy`,"
        " `schedule` or `custom/<name>`.",
    )
    value: float | None = Field(default=None, description="Measured value; absent if unknown.")
    threshold: float | None = Field(default=None, description="Threshold it was compared with.")
    fired: bool = Field(default=False, description="Whether it crossed the threshold.")
    consecutive: int = Field(default=0, ge=0, description="Evaluations in a row it fired.")
    since: datetime | None = Field(
        default=None,
        description="When the current run of breaches began (one run retrains at most once).",
    )
    samples: int | None = Field(default=None, ge=0, description="Samples in the window.")
    coverage: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Realized performance: the label coverage of the window judged.",
    )
    message: str = Field(default="", max_length=1024, description="Detail for humans.")


class LastRetrain(CamelModel):
    """The most recent retrain the policy started."""

    time: datetime = Field(description="When the TrainingJob was created.")
    reason: str = Field(min_length=1, max_length=1024, description="Which trigger, and its value.")
    training_job: ObjectName = Field(description="The TrainingJob created.")
    resulting_version: ObjectName | None = Field(
        default=None, description="The ModelVersion it produced, once known."
    )


class EvaluationRecord(CamelModel):
    """One past evaluation, kept so its values can be plotted where no Prometheus keeps them."""

    time: datetime = Field(description="When it ran.")
    values: dict[str, float] = Field(
        default_factory=dict,
        max_length=32,
        description="Each trigger's measured value, by trigger name; unmeasured ones are absent.",
    )
    feature_psi: dict[str, float] = Field(
        default_factory=dict,
        max_length=8,
        description="PSI of the most drifted features (at most 8), by feature name.",
    )


class DriftPolicyStatus(ResourceStatus):
    """Observed state: conditions `Ready`, `DriftDetected` and `SourceReachable`."""

    last_evaluation_time: datetime | None = Field(
        default=None, description="When the triggers were last evaluated."
    )
    triggers: list[TriggerState] = Field(
        default_factory=list,
        max_length=32,
        description="Last value of each trigger.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    headline: TriggerState | None = Field(
        default=None,
        description="The trigger closest to firing (largest value relative to its threshold),"
        " shown by `kubectl get dp`.",
    )
    last_retrain: LastRetrain | None = Field(default=None, description="The latest retrain.")
    retrains_in_period: int = Field(
        default=0, ge=0, description="Retrains within the current `budget.period`."
    )
    evaluations: list[EvaluationRecord] = Field(
        default_factory=list,
        max_length=20,
        description="The last evaluations, newest first (at most 20): what `mlops console` plots"
        " when Prometheus cannot be reached.",
    )


class DriftPolicy(
    CustomResource,
    kind="DriftPolicy",
    plural="driftpolicies",
    short_names=("dp",),
    printer_columns=(
        PrinterColumn("Target", "string", ".spec.deployment", "ModelDeployment watched."),
        PrinterColumn("Trigger", "string", ".status.headline.name", "Trigger closest to firing."),
        PrinterColumn("Value", "number", ".status.headline.value", "Its last value."),
        PrinterColumn("Threshold", "number", ".status.headline.threshold", "Its threshold."),
        PrinterColumn(
            "Last Retrain", "date", ".status.lastRetrain.time", "Time since the last retrain."
        ),
        PrinterColumn(
            "Drift",
            "string",
            '.status.conditions[?(@.type=="DriftDetected")].status',
            "Whether a trigger fired at the last evaluation.",
            priority=1,
        ),
        PrinterColumn("Age", "date", ".metadata.creationTimestamp", "Time since creation."),
    ),
):
    """A DriftPolicy watches a ModelDeployment's live data and quality and retrains the
    model when drift, accuracy decay, a custom query or a schedule says so."""

    spec: DriftPolicySpec = Field(description="Desired behaviour.")
    status: DriftPolicyStatus | None = Field(
        default=None, description="Observed state, written by the operator."
    )
