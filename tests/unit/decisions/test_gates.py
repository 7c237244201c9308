"""Gates: thresholds with their direction, the champion comparison, and the verdict."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_operator.api.gates import (
    ChampionComparison,
    ComparisonOp,
    Gates,
    MaxRegression,
    MetricGate,
)
from mlops_operator.api.modeldeployment import ModelDeployment
from mlops_operator.api.modelversion import Approval, ModelVersion, ModelVersionPhase
from mlops_operator.decisions.gates import (
    ChampionMetrics,
    champion_gate,
    evaluate_gates,
    gates_for,
    higher_is_better,
    merge_gates,
    metric_gate,
    verdict,
)
from mlops_operator.validator.report import Check, ValidationReport

METRICS = {"accuracy": 0.93, "log_loss": 0.25}
EXAMPLES = Path(__file__).resolve().parents[3] / "manifests" / "examples"


@pytest.mark.parametrize(
    ("gate", "passed"),
    [
        (MetricGate(metric="accuracy", threshold=0.9), True),
        (MetricGate(metric="accuracy", threshold=0.95), False),
        (MetricGate(metric="accuracy", op=ComparisonOp.GT, threshold=0.93), False),
        (MetricGate(metric="log_loss", op=ComparisonOp.LE, threshold=0.3), True),
        (MetricGate(metric="log_loss", op=ComparisonOp.LT, threshold=0.25), False),
    ],
)
def test_metric_gates_compare_with_their_operator(gate: MetricGate, passed: bool) -> None:
    result = metric_gate(gate, METRICS)
    assert result.passed is passed
    assert (result.metric, result.value, result.threshold) == (
        gate.metric,
        METRICS[gate.metric],
        gate.threshold,
    )


def test_a_missing_metric_fails_and_names_what_exists() -> None:
    result = metric_gate(MetricGate(metric="r2", threshold=0.5), METRICS)
    assert not result.passed
    assert "['accuracy', 'log_loss']" in result.message


def test_direction_is_known_per_metric() -> None:
    assert higher_is_better("accuracy")
    assert not higher_is_better("log_loss")
    assert not higher_is_better("rmse")
    assert higher_is_better("rmse", declared=True)


def _compare(regression: MaxRegression, metric: str | None = None) -> ChampionComparison:
    return ChampionComparison(metric=metric, max_regression=regression)


@pytest.mark.parametrize(
    ("regression", "candidate", "threshold", "passed"),
    [
        (MaxRegression(absolute=0.01), 0.895, 0.89, True),
        (MaxRegression(absolute=0.01), 0.885, 0.89, False),
        (MaxRegression(absolute=0.0), 0.9, 0.9, True),
        (MaxRegression(relative=0.1), 0.82, 0.81, True),
        (MaxRegression(relative=0.1), 0.80, 0.81, False),
    ],
)
def test_champion_comparison_higher_is_better(
    regression: MaxRegression, candidate: float, threshold: float, passed: bool
) -> None:
    result = champion_gate(
        _compare(regression),
        primary_metric="accuracy",
        candidate={"accuracy": candidate},
        champion=ChampionMetrics("iris-v1", {"accuracy": 0.9}),
    )
    assert result.passed is passed
    assert result.threshold == pytest.approx(threshold)
    assert (result.champion, result.champion_value, result.value) == ("iris-v1", 0.9, candidate)


def test_champion_comparison_lower_is_better() -> None:
    def judge(value: float) -> bool:
        return champion_gate(
            _compare(MaxRegression(relative=0.2), metric="log_loss"),
            primary_metric="accuracy",
            candidate={"log_loss": value},
            champion=ChampionMetrics("iris-v1", {"log_loss": 0.5}),
        ).passed

    assert judge(0.59)
    assert not judge(0.61)


def test_champion_not_measured_fails() -> None:
    result = champion_gate(
        _compare(MaxRegression(absolute=0.0)),
        primary_metric="accuracy",
        candidate={"accuracy": 0.9},
        champion=ChampionMetrics("iris-v1", {}),
    )
    assert not result.passed
    assert "champion iris-v1 has no 'accuracy'" in result.message


def _report(**champions: dict[str, float]) -> ValidationReport:
    return ValidationReport(
        checks=[Check(name="checksum", passed=True), Check(name="parity", passed=True)],
        rows=30,
        candidate_metrics={"accuracy": 0.9},
        champion_metrics=champions,
    )


def test_evaluate_gates_lists_checks_thresholds_then_champions() -> None:
    gates = Gates(
        metrics=[MetricGate(metric="accuracy", threshold=0.9)],
        compare_to_champion=_compare(MaxRegression(absolute=0.0)),
    )
    results = evaluate_gates(
        gates,
        primary_metric="accuracy",
        report=_report(**{"iris-v1": {"accuracy": 0.95}}),
        champions=["iris-v1"],
    )
    assert [(r.gate, r.passed) for r in results] == [
        ("checksum", True),
        ("parity", True),
        ("accuracy >= 0.9", True),
        ("compareToChampion", False),
    ]
    assert verdict(results, require_approval=False, approval=None) is ModelVersionPhase.REJECTED


def test_thresholds_judge_the_validators_measurement_not_the_reported_metrics() -> None:
    # The report measured 0.9 where a hand-made ModelVersion could claim anything: the gate
    # sees only the measurement; with nothing measured (evaluation failed) it fails.
    gates = Gates(metrics=[MetricGate(metric="accuracy", threshold=0.95)])
    (measured,) = evaluate_gates(gates, primary_metric="accuracy", report=_report())[2:]
    assert (measured.passed, measured.value) == (False, 0.9)
    unmeasured = ValidationReport(checks=[Check(name="evaluation", passed=False)])
    (missing,) = evaluate_gates(gates, primary_metric="accuracy", report=unmeasured)[1:]
    assert not missing.passed
    assert "was not measured on the held-out rows" in missing.message


def test_no_champion_passes_the_comparison() -> None:
    gates = Gates(compare_to_champion=_compare(MaxRegression(absolute=0.0)))
    results = evaluate_gates(gates, primary_metric="accuracy", report=_report(), champions=[])
    assert results[-1].passed
    assert "no champion" in results[-1].message


def test_approval_holds_a_passing_version_until_given() -> None:
    results = evaluate_gates(
        Gates(require_approval=True),
        primary_metric="accuracy",
        report=_report(),
    )
    assert verdict(results, require_approval=True, approval=None) is (
        ModelVersionPhase.AWAITING_APPROVAL
    )
    approval = Approval(by="alice", at=datetime(2025, 1, 1, tzinfo=UTC))
    assert verdict(results, require_approval=True, approval=approval) is (
        ModelVersionPhase.VALIDATED
    )


def test_merge_keeps_every_threshold_and_any_approval() -> None:
    own = Gates(metrics=[MetricGate(metric="accuracy", threshold=0.9)])
    deployment = Gates(
        metrics=[MetricGate(metric="log_loss", op=ComparisonOp.LE, threshold=0.3)],
        require_approval=True,
    )
    merged = merge_gates(own, None, deployment, own)
    assert [m.metric for m in merged.metrics] == ["accuracy", "log_loss"]  # a repeat once
    assert merged.require_approval
    # More than one object may declare (16): merged, not refused.
    many = [Gates(metrics=[MetricGate(metric=f"{p}{i}", threshold=0.5) for i in range(16)])
            for p in "ab"]  # fmt: skip
    assert len(merge_gates(*many).metrics) == 32


def _example(kind: str, **spec: Any) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((EXAMPLES / f"{kind}.yaml").read_text())
    doc["spec"] |= spec
    return doc


def _deployment(name: str, model: str, gates: dict[str, Any] | None) -> ModelDeployment:
    doc = _example("modeldeployment", modelName=model, gates=gates)
    doc["metadata"]["name"] = name
    return ModelDeployment.model_validate(doc)


def test_a_version_is_validated_against_the_gates_of_each_deployment_that_may_serve_it() -> None:
    comparison = {"maxRegression": {"absolute": 0.01}}
    deployments = [
        _deployment("churn", "churn", {"metrics": [{"metric": "log_loss", "op": "<=",
                                                    "threshold": 0.3}]}),
        _deployment("churn-eu", "churn", {"requireApproval": True,
                                          "compareToChampion": comparison}),
        _deployment("fraud", "fraud", {"requireApproval": True}),
        _deployment("churn-open", "churn", None),
    ]  # fmt: skip
    own = {"metrics": [{"metric": "accuracy", "threshold": 0.9}]}
    untargeted = ModelVersion.model_validate(
        _example("modelversion", gates=own, targetDeployment=None)
    )
    gates = gates_for(untargeted, deployments)
    assert [m.metric for m in gates.metrics] == ["accuracy", "log_loss"]
    assert gates.require_approval
    # A deployment's comparison is with its own champion, not every champion of the model.
    assert gates.compare_to_champion == ChampionComparison.model_validate(
        comparison | {"deployment": "churn-eu"}
    )
    # Naming its target keeps the other deployments' gates off the version.
    targeted = ModelVersion.model_validate(
        _example("modelversion", gates=own, targetDeployment="churn")
    )
    gates = gates_for(targeted, deployments)
    assert [m.metric for m in gates.metrics] == ["accuracy", "log_loss"]
    assert not gates.require_approval
    assert gates.compare_to_champion is None
    # No deployment of its model: its own gates, nothing else.
    assert gates_for(untargeted, deployments[2:3]) == Gates.model_validate(own)
