"""Each trigger of a DriftPolicy measured and judged: from a window's counts to `Reading`s.

A metrics source (Prometheus or the direct scrape, `mlops_operator.prometheus`) gives a
`WindowCounts` per served version: how many values fell in each reference bin during
the window, the reference proportions, and the evaluator's realized and estimated
performance. Everything after that is here and in `mlops_operator.distributions`, so the
two sources cannot disagree on the maths, and each trigger is decided in one place:
its reading (`measure`) and whether it crossed its threshold (`breached`). The
feature-drift trigger, for one, scores every watched feature's PSI against
``psiThreshold`` and breaches when the share of drifted features reaches
``minDriftedShare``. The decision chain over the readings is `decisions.drift`.

Accuracy and RMSE are the evaluator's judged window (by prediction time, once its label
coverage reached the deployment's ``minLabelCoverage``), not the policy's `window`: a
window whose labels are still missing is never judged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from dataclasses import replace as _with
from datetime import UTC, datetime

from mlops_operator.api.driftpolicy import (
    AccuracyTrigger,
    CustomTrigger,
    EstimatedAccuracyTrigger,
    FeatureDriftTrigger,
    PredictionDriftTrigger,
    RmseTrigger,
    Triggers,
)
from mlops_operator.api.gates import ComparisonOp
from mlops_operator.distributions import drifted_share, psi

__all__ = [
    "Histogram",
    "Reading",
    "WindowCounts",
    "breached",
    "choose_version",
    "custom_reading",
    "measure",
]


@dataclass(frozen=True)
class Reading:
    """One trigger's measurement over the window.

    ``value`` is None when it could not be measured (``message`` says why). The
    trigger breaches when ``value op threshold``.
    """

    name: str
    value: float | None
    threshold: float
    op: ComparisonOp
    samples: int | None = None
    min_samples: int | None = None
    message: str = ""
    details: dict[str, float] = field(default_factory=dict)
    coverage: float | None = None
    """Label coverage of the window judged (realized performance triggers)."""

    @property
    def enough_samples(self) -> bool:
        """Whether the window holds enough samples to judge (always, without a minimum)."""
        return self.min_samples is None or (self.samples or 0) >= self.min_samples


def breached(reading: Reading) -> bool:
    """Whether the reading crosses its threshold; never with too few samples or no value."""
    if reading.value is None or not reading.enough_samples:
        return False
    return reading.op.holds(reading.value, reading.threshold)


@dataclass(frozen=True)
class Histogram:
    """Values counted per bin over the window, and each bin's share on the training data."""

    counts: Mapping[str, float]
    reference: Mapping[str, float]

    @property
    def total(self) -> float:
        """Values counted in the window."""
        return float(sum(self.counts.values()))

    def psi(self) -> float:
        """PSI of the window against the reference; bins missing on one side count as empty."""
        bins = sorted(set(self.counts) | set(self.reference))
        return psi(
            [self.reference.get(b, 0.0) for b in bins], [self.counts.get(b, 0.0) for b in bins]
        )


@dataclass(frozen=True)
class WindowCounts:
    """What a source saw of one served model over the window."""

    features: Mapping[str, Histogram] = field(default_factory=dict)
    predictions: Histogram | None = None
    realized: Mapping[str, float] = field(default_factory=dict)
    """The evaluator's gauges of this version, by the keys of `realized.VERSION_GAUGES`."""


def _samples(total: float) -> int:
    # Prometheus' increase() extrapolates to the window's edges; counts are whole values.
    return round(total)


def _feature_reading(trigger: FeatureDriftTrigger, counts: WindowCounts) -> Reading:
    watched = trigger.features or sorted(counts.features)
    missing = [name for name in watched if name not in counts.features]
    reading = Reading(
        name="featureDrift",
        value=None,
        threshold=trigger.min_drifted_share,
        op=ComparisonOp.GE,
        min_samples=trigger.min_samples,
    )
    if not watched:
        return _with(reading, samples=0, message="the server exports no feature metrics yet")
    if missing:
        return _with(
            reading,
            samples=0,
            message=f"no metrics for feature(s) {', '.join(missing)}; the model's features are"
            f" {', '.join(sorted(counts.features)) or 'not exported yet'}",
        )
    samples = _samples(min(counts.features[name].total for name in watched))
    if samples <= 0:
        return _with(reading, samples=0, message="no requests in the window")
    scores = {name: counts.features[name].psi() for name in watched}
    share = drifted_share(list(scores.values()), trigger.psi_threshold)
    ranked = sorted(scores.items(), key=lambda item: -item[1])
    message = f"PSI (threshold {trigger.psi_threshold:g}): " + ", ".join(
        f"{name}={score:.3f}" for name, score in ranked
    )
    return _with(reading, value=share, samples=samples, message=message, details=scores)


def _prediction_reading(trigger: PredictionDriftTrigger, counts: WindowCounts) -> Reading:
    reading = Reading(
        name="predictionDrift",
        value=None,
        threshold=trigger.psi_threshold,
        op=ComparisonOp.GE,
        min_samples=trigger.min_samples,
    )
    if counts.predictions is None or not counts.predictions.reference:
        return _with(reading, samples=0, message="the server exports no prediction metrics yet")
    samples = _samples(counts.predictions.total)
    if samples <= 0:
        return _with(reading, samples=0, message="no predictions in the window")
    return _with(reading, value=counts.predictions.psi(), samples=samples)


_NO_EVALUATOR = (
    "no realized performance: the evaluator of the target reports nothing for this version"
    " (the ModelDeployment needs spec.feedback, and labels posted to /feedback)"
)


def _pending(realized: Mapping[str, float]) -> str:
    coverage = realized.get("label_coverage")
    expired = realized.get("expired_windows", 0.0)
    message = "no window judged yet: labels still missing"
    if coverage is not None:
        message += f" (newest window's coverage {coverage:.3g})"
    if expired:
        message += f"; {expired:.0f} window(s) expired short of labels"
    return message


def _coverage(realized: Mapping[str, float]) -> str:
    start = realized.get("realized_window_start")
    when = f" from {datetime.fromtimestamp(start, UTC).isoformat()}" if start is not None else ""
    return (
        f"judged window{when}: {realized.get('realized_labelled_rows', 0):.0f} of"
        f" {realized.get('realized_predictions', 0):.0f} rows labelled (coverage"
        f" {realized.get('realized_coverage', 0.0):.3g}); newest window's coverage"
        f" {realized.get('label_coverage', 0.0):.3g}"
    )


def _realized_reading(reading: Reading, counts: WindowCounts, key: str) -> Reading:
    realized = counts.realized
    if not realized:
        return _with(reading, samples=0, message=_NO_EVALUATOR)
    value = realized.get(key)
    if value is None:
        return _with(reading, samples=0, message=_pending(realized))
    samples = _samples(realized.get("realized_labelled_rows", 0.0))
    return _with(
        reading,
        value=value,
        samples=samples,
        message=_coverage(realized),
        coverage=realized.get("realized_coverage"),
    )


def _accuracy_reading(trigger: AccuracyTrigger, counts: WindowCounts) -> Reading:
    reading = Reading("accuracy", None, trigger.floor, ComparisonOp.LT,
                      min_samples=trigger.min_samples)  # fmt: skip
    return _realized_reading(reading, counts, "realized_accuracy")


def _rmse_reading(trigger: RmseTrigger, counts: WindowCounts) -> Reading:
    reading = Reading("rmse", None, trigger.ceiling, ComparisonOp.GT,
                      min_samples=trigger.min_samples)  # fmt: skip
    return _realized_reading(reading, counts, "realized_rmse")


def _estimated_reading(trigger: EstimatedAccuracyTrigger, counts: WindowCounts) -> Reading:
    reading = Reading("estimatedAccuracy", None, trigger.floor, ComparisonOp.LT,
                      min_samples=trigger.min_samples)  # fmt: skip
    realized = counts.realized
    value = realized.get("estimated_accuracy")
    if value is None:
        return _with(reading, samples=0, message=_NO_EVALUATOR if not realized else
                     "no calibrated confidence in the newest window (a model trained before"
                     " calibration, or a regressor)")  # fmt: skip
    start = realized.get("estimated_window_start")
    when = f" from {datetime.fromtimestamp(start, UTC).isoformat()}" if start is not None else ""
    message = f"CBPE over the newest window{when}, before labels"
    error = realized.get("cbpe_absolute_error")
    if error is not None:
        message += f"; on the judged window CBPE was off realized accuracy by {error:.3g}"
    return _with(
        reading,
        value=value,
        samples=_samples(realized.get("estimated_predictions", 0.0)),
        message=message,
    )


def measure(triggers: Triggers, counts: WindowCounts) -> list[Reading]:
    """One reading per data trigger the policy sets (custom ones come from `custom_reading`)."""
    readings = []
    if triggers.feature_drift is not None:
        readings.append(_feature_reading(triggers.feature_drift, counts))
    if triggers.prediction_drift is not None:
        readings.append(_prediction_reading(triggers.prediction_drift, counts))
    if triggers.accuracy is not None:
        readings.append(_accuracy_reading(triggers.accuracy, counts))
    if triggers.rmse is not None:
        readings.append(_rmse_reading(triggers.rmse, counts))
    if triggers.estimated_accuracy is not None:
        readings.append(_estimated_reading(triggers.estimated_accuracy, counts))
    return readings


def custom_reading(trigger: CustomTrigger, value: float | None, message: str = "") -> Reading:
    """The reading of a custom PromQL trigger whose query returned `value` (None: no result)."""
    return Reading(
        name=f"custom/{trigger.name}",
        value=value,
        threshold=trigger.threshold,
        op=trigger.op,
        message=message or ("" if value is not None else "the query returned no sample"),
    )


def choose_version(
    counted: Mapping[str, WindowCounts], preferred: Sequence[str]
) -> tuple[str, WindowCounts] | None:
    """The counts of the version to judge: the first of `preferred` that served, else the
    version that served the most requests in the window; None when nothing served."""
    for name in preferred:
        if name in counted:
            return name, counted[name]
    if not counted:
        return None

    def traffic(item: tuple[str, WindowCounts]) -> float:
        counts = item[1]
        return counts.predictions.total if counts.predictions else 0.0

    return max(counted.items(), key=traffic)
