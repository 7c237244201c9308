"""Gates: what a candidate ModelVersion must show before it may serve.

The same `Gates` appear in three places: a TrainingJob copies its gates into
the ModelVersion it produces, a ModelVersion carries them (immutably), and a
ModelDeployment applies its own to every candidate version. Absolute metric
thresholds come first; `compareToChampion` then measures the candidate against
the version serving now (MLflow's ``MetricThreshold`` idea, applied by the cluster).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from mlops_operator.api.fields import MetricName, ObjectName
from mlops_operator.api.model import CamelModel, Rule

__all__ = [
    "BOUNDED_METRICS",
    "LOWER_IS_BETTER_METRICS",
    "ChampionComparison",
    "ComparisonOp",
    "Gates",
    "MaxRegression",
    "MetricGate",
]

BOUNDED_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "f1",
    "f1_macro",
    "f1_weighted",
    "precision",
    "precision_macro",
    "recall",
    "recall_macro",
    "roc_auc",
)
"""Metrics whose values lie in [0, 1]: a threshold outside that range is a mistake."""

LOWER_IS_BETTER_METRICS = ("rmse", "mae", "mse", "log_loss", "max_error")
"""Metrics where a smaller value is better; every other metric is better when larger."""


def _cel_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


class ComparisonOp(StrEnum):
    """How a metric is compared with its threshold."""

    GE = ">="
    LE = "<="
    GT = ">"
    LT = "<"


class MetricGate(CamelModel):
    """An absolute threshold on one offline metric, e.g. `accuracy >= 0.9`."""

    cel_rules = (
        Rule(
            f"!(self.metric in {_cel_list(BOUNDED_METRICS)})"
            " || (self.threshold >= 0.0 && self.threshold <= 1.0)",
            "`threshold` must be between 0 and 1 for a metric that lies in [0, 1]",
            field_path=".threshold",
        ),
    )

    metric: MetricName = Field(
        description="A held-out metric the validation Job measures (`accuracy`,"
        " `balanced_accuracy`, `f1_macro`, `log_loss`, `roc_auc`; `rmse`, `mae`, `r2`): the"
        " gate judges the validator's measurement, not the version's self-reported metrics."
    )
    op: ComparisonOp = Field(
        default=ComparisonOp.GE,
        description="Comparison: the gate passes when `metric op threshold`.",
    )
    threshold: float = Field(description="The value the metric is compared with.")


class MaxRegression(CamelModel):
    """How much worse than the champion a candidate may be; set exactly one."""

    cel_rules = (
        Rule(
            "has(self.absolute) != has(self.relative)",
            "exactly one of `absolute` or `relative` must be set",
        ),
    )

    absolute: float | None = Field(
        default=None,
        ge=0.0,
        description="Largest allowed loss in metric units, e.g. `0.01` accuracy points;"
        " `0` demands at least the champion's value.",
    )
    relative: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Largest allowed loss as a fraction of the champion's value, e.g. `0.02` for 2%.",
    )


class ChampionComparison(CamelModel):
    """Compare the candidate with the version serving now, on the same metric."""

    metric: MetricName | None = Field(
        default=None,
        description="Metric to compare; default: the candidate's `spec.primaryMetric.name`.",
    )
    higher_is_better: bool | None = Field(
        default=None,
        description="Direction of the metric; default: lower is better for rmse, mae, mse,"
        " log_loss and max_error, higher for every other metric.",
    )
    max_regression: MaxRegression = Field(
        description="How much worse than the champion the candidate may be."
    )
    deployment: ObjectName | None = Field(
        default=None,
        description="ModelDeployment whose champion is the baseline; default: every"
        " ModelDeployment of the same model in the namespace. Passes when there is no champion.",
    )


class Gates(CamelModel):
    """Checks a candidate version must pass; all of them, in order."""

    metrics: list[MetricGate] = Field(
        default_factory=list,
        max_length=16,
        description="Absolute thresholds on offline metrics; one entry per metric and operator.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["metric", "op"],
        },
    )
    compare_to_champion: ChampionComparison | None = Field(
        default=None, description="Compare with the current champion on the same metric."
    )
    require_approval: bool = Field(
        default=False,
        description="Hold a version that passed every other gate until a person holding the"
        " `approve` verb (the chart's approver role, `<release>-approver`) approves it. A"
        " version the operator did not produce from a TrainingJob is always held.",
    )
