"""`assemble`: the samples of either source as `WindowCounts` per served version.

Aspects: several pods' counts add up while their identical references are taken once;
a bin without a value is skipped; only the evaluator's gauges are kept, by their keys.
"""

from __future__ import annotations

from mlops_operator.decisions.triggers import Histogram
from mlops_operator.prometheus import Sample
from mlops_operator.prometheus.windows import assemble


def test_assemble_adds_pods_counts_and_takes_one_reference_per_version() -> None:
    def sample(version: str, bin_: str, value: float, **labels: str) -> Sample:
        return Sample({"model_version": version, "bin": bin_, **labels}, value)

    pod = [sample("1", "0", 3.0, feature="f"), sample("1", "1", 1.0, feature="f")]
    ref = [sample("1", "0", 0.5, feature="f"), sample("1", "1", 0.5, feature="f")]
    counted = assemble(
        feature_bins=[*pod, *pod, sample("2", "0", 9.0, feature="f")],
        feature_reference=[*ref, *ref, sample("2", "0", 1.0, feature="f")],
        prediction_bins=[sample("1", "a", float("nan"))],
        prediction_reference=[sample("1", "a", 1.0)],
        realized=[
            Sample({"model_version": "1", "__name__": "mlops_realized_accuracy"}, 0.5),
            Sample({"model_version": "1", "__name__": "mlops_unrelated"}, 9.0),
            Sample({"model_version": "2", "__name__": "mlops_realized_accuracy"}, float("nan")),
        ],
    )
    assert sorted(counted) == ["1", "2"]
    assert counted["1"].features["f"] == Histogram({"0": 6.0, "1": 2.0}, {"0": 0.5, "1": 0.5})
    assert counted["1"].predictions == Histogram({}, {"a": 1.0})
    assert counted["1"].realized == {"realized_accuracy": 0.5}
    assert counted["2"].realized == {}
    assert counted["2"].features["f"] == Histogram({"0": 9.0}, {"0": 1.0})
    assert counted["2"].predictions is None
