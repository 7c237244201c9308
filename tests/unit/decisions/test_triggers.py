"""From window counts to readings: every trigger, zero traffic, one-class traffic, missing series.

Aspects: feature drift as the share of watched features whose PSI reaches the threshold
(per-feature PSI in the details), prediction drift, realized accuracy and RMSE and estimated
accuracy from the evaluator's gauges (a window not judged yet has no value, never a low
one), the sample counts the decision needs, what is said when something is missing, which
version is judged, and whether a reading breaches its threshold.
"""

from __future__ import annotations

import pytest

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
from mlops_operator.decisions.triggers import (
    Histogram,
    Reading,
    WindowCounts,
    breached,
    choose_version,
    custom_reading,
    measure,
)
from mlops_operator.distributions import psi

REFERENCE = {"0": 0.25, "1": 0.25, "2": 0.5}
REALIZED = {
    "realized_accuracy": 0.75,
    "realized_rmse": 0.5,
    "realized_labelled_rows": 200.0,
    "realized_predictions": 250.0,
    "realized_coverage": 0.8,
    "realized_window_start": 1_800_000_000.0,
    "label_coverage": 0.1,
    "estimated_accuracy": 0.7,
    "estimated_predictions": 400.0,
    "cbpe_absolute_error": 0.02,
}


def counts(**features: dict[str, float]) -> WindowCounts:
    return WindowCounts(
        features={name: Histogram(c, REFERENCE) for name, c in features.items()},
        predictions=Histogram({"a": 90.0, "b": 10.0}, {"a": 0.5, "b": 0.5}),
        realized=REALIZED,
    )


def test_feature_drift_is_the_share_of_drifted_features() -> None:
    window = counts(
        stable={"0": 25.0, "1": 25.0, "2": 50.0}, shifted={"0": 0.0, "1": 0.0, "2": 100.0}
    )
    trigger = FeatureDriftTrigger(psi_threshold=0.25, min_samples=50, min_drifted_share=0.5)
    (reading,) = measure(Triggers(feature_drift=trigger), window)
    assert reading.value == 0.5
    assert reading.samples == 100
    assert reading.details["stable"] == pytest.approx(0.0)
    assert reading.details["shifted"] == pytest.approx(psi([0.25, 0.25, 0.5], [0, 0, 100]))
    assert reading.message.startswith("PSI (threshold 0.25): shifted=")


def test_feature_drift_watches_only_the_listed_features() -> None:
    window = counts(a={"0": 0.0, "1": 0.0, "2": 10.0}, b={"0": 2.5, "1": 2.5, "2": 5.0})
    (reading,) = measure(Triggers(feature_drift=FeatureDriftTrigger(features=["b"])), window)
    assert reading.value == 0.0
    assert list(reading.details) == ["b"]


def test_zero_traffic_gives_no_value_and_zero_samples() -> None:
    window = counts(a={"0": 0.0, "1": 0.0, "2": 0.0})
    window = WindowCounts(features=window.features, predictions=Histogram({}, {"x": 1.0}))
    triggers = Triggers(
        feature_drift=FeatureDriftTrigger(),
        prediction_drift=PredictionDriftTrigger(),
        accuracy=AccuracyTrigger(floor=0.9),
    )
    readings = measure(triggers, window)
    assert [(r.value, r.samples) for r in readings] == [(None, 0), (None, 0), (None, 0)]
    assert [r.enough_samples for r in readings] == [False, False, False]


def test_missing_feature_series_are_named() -> None:
    (reading,) = measure(
        Triggers(feature_drift=FeatureDriftTrigger(features=["nope"])),
        counts(a={"0": 1.0, "1": 1.0, "2": 2.0}),
    )
    assert reading.value is None
    assert "no metrics for feature(s) nope; the model's features are a" in reading.message


def test_one_class_predictions_drift() -> None:
    (reading,) = measure(
        Triggers(prediction_drift=PredictionDriftTrigger(min_samples=10)), counts()
    )
    assert reading.value == pytest.approx(psi([0.5, 0.5], [90, 10]))
    assert reading.samples == 100
    assert reading.op is ComparisonOp.GE


def test_realized_accuracy_and_rmse_are_the_judged_window_with_its_coverage() -> None:
    (acc,) = measure(Triggers(accuracy=AccuracyTrigger(floor=0.8, min_samples=100)), counts())
    assert (acc.value, acc.samples, acc.op, acc.threshold) == (0.75, 200, ComparisonOp.LT, 0.8)
    assert acc.coverage == 0.8
    assert "200 of 250 rows labelled (coverage 0.8)" in acc.message
    assert "2027-01-15T08:00:00+00:00" in acc.message
    (err,) = measure(Triggers(rmse=RmseTrigger(ceiling=1.0)), counts())
    assert err.value == pytest.approx(0.5)
    assert err.op is ComparisonOp.GT


def test_a_window_not_judged_yet_has_no_value_and_says_so() -> None:
    pending = {"label_coverage": 0.42, "expired_windows": 1.0, "estimated_accuracy": 0.9}
    (acc,) = measure(Triggers(accuracy=AccuracyTrigger(floor=0.8)), WindowCounts(realized=pending))
    assert (acc.value, acc.samples) == (None, 0)
    assert "no window judged yet" in acc.message
    assert "coverage 0.42" in acc.message
    assert "1 window(s) expired" in acc.message
    (none,) = measure(Triggers(accuracy=AccuracyTrigger(floor=0.8)), WindowCounts())
    assert none.value is None
    assert "needs spec.feedback" in none.message


def test_estimated_accuracy_reads_cbpe_before_labels() -> None:
    trigger = EstimatedAccuracyTrigger(floor=0.8, min_samples=100)
    (est,) = measure(Triggers(estimated_accuracy=trigger), counts())
    assert (est.name, est.value, est.samples, est.op) == (
        "estimatedAccuracy", 0.7, 400, ComparisonOp.LT
    )  # fmt: skip
    assert "off realized accuracy by 0.02" in est.message


def test_custom_reading_without_a_sample_has_no_value() -> None:
    trigger = CustomTrigger(name="errors", query="x", op=ComparisonOp.GT, threshold=1.0)
    reading = custom_reading(trigger, None)
    assert (reading.name, reading.value) == ("custom/errors", None)
    assert "no sample" in reading.message


def test_choose_version_prefers_the_champion_then_the_busiest() -> None:
    quiet = WindowCounts(predictions=Histogram({"a": 1.0}, {"a": 1.0}))
    busy = WindowCounts(predictions=Histogram({"a": 50.0}, {"a": 1.0}))
    counted = {"iris-v1": quiet, "iris-v2": busy}
    assert choose_version(counted, ["nope", "iris-v1"]) == ("iris-v1", quiet)
    assert choose_version(counted, []) == ("iris-v2", busy)
    assert choose_version({}, ["x"]) is None


def test_breached_compares_with_the_operator_and_needs_samples() -> None:
    def psi_reading(value: float | None, samples: int = 100) -> Reading:
        return Reading("predictionDrift", value, 0.25, ComparisonOp.GE, samples, min_samples=50)

    assert breached(psi_reading(0.25))
    assert not breached(psi_reading(0.2))
    assert not breached(psi_reading(0.9, samples=49))
    assert not breached(psi_reading(None))
    assert breached(Reading("accuracy", 0.7, 0.8, ComparisonOp.LT))
