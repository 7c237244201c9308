"""Gates: whether a candidate ModelVersion may serve, with the evidence for each check.

The gates are the version's own merged with those of every ModelDeployment
that may serve it (`gates_for`). Three sources of results, in order: the validation Job's checks of the artifact
(checksum, load, signature, parity, evaluation), the absolute thresholds on the
metrics the Job measured itself on the held-out rows (``accuracy >= 0.9``), and
the comparison with each champion on the same rows. Every number judged is the
validator's own: ``spec.metrics`` is what the creator of the ModelVersion wrote,
and anyone allowed to create one could write any figure there. Then the verdict:
`Rejected` if anything failed, else `AwaitingApproval` until someone approves
when approval is required, else `Validated`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from mlops_operator.api.gates import (
    LOWER_IS_BETTER_METRICS,
    ChampionComparison,
    ComparisonOp,
    Gates,
    MetricGate,
)
from mlops_operator.api.modeldeployment import ModelDeployment
from mlops_operator.api.modelversion import Approval, GateResult, ModelVersion, ModelVersionPhase
from mlops_operator.validator.report import ValidationReport

__all__ = [
    "ChampionMetrics",
    "champion_gate",
    "check_results",
    "evaluate_gates",
    "gates_for",
    "higher_is_better",
    "merge_gates",
    "metric_gate",
    "serving_deployments",
    "verdict",
]

_OPS: dict[ComparisonOp, Callable[[float, float], bool]] = {
    ComparisonOp.GE: operator.ge,
    ComparisonOp.LE: operator.le,
    ComparisonOp.GT: operator.gt,
    ComparisonOp.LT: operator.lt,
}


@dataclass(frozen=True)
class ChampionMetrics:
    """A champion the candidate is compared with, and its metrics on the candidate's held-out rows."""

    model_version: str
    metrics: Mapping[str, float]


def higher_is_better(metric: str, declared: bool | None = None) -> bool:
    """The metric's direction: `declared` when given, else lower is better only for error metrics."""
    if declared is not None:
        return declared
    return metric not in LOWER_IS_BETTER_METRICS


def merge_gates(*sources: Gates | None) -> Gates:
    """All gates of several sources (the version's, the deployments'): every one must pass.

    Metric gates are concatenated, an exact repeat once; the first `compareToChampion`
    wins; approval is required when any source requires it. The result may hold more
    metric gates than one object may declare (16 each): it is built, not validated.
    """
    present = [g for g in sources if g is not None]
    metrics = {(m.metric, m.op, m.threshold): m for g in present for m in g.metrics}
    return Gates.model_construct(
        metrics=list(metrics.values()),
        compare_to_champion=next(
            (g.compare_to_champion for g in present if g.compare_to_champion), None
        ),
        require_approval=any(g.require_approval for g in present),
    )


def serving_deployments(
    mv: ModelVersion, deployments: Sequence[ModelDeployment]
) -> list[ModelDeployment]:
    """Those of `deployments` that may serve `mv`: its `targetDeployment`, else all of its model."""
    target = mv.spec.target_deployment
    return [
        d
        for d in deployments
        if d.spec.model_name == mv.spec.model_name and (target is None or d.name == target)
    ]


def _own_comparison(deployment: ModelDeployment) -> Gates | None:
    """The deployment's gates, its champion comparison defaulting to its own champion."""
    gates = deployment.spec.gates
    comparison = gates.compare_to_champion if gates else None
    if gates is None or comparison is None or comparison.deployment is not None:
        return gates
    own = comparison.model_copy(update={"deployment": deployment.name})
    return gates.model_copy(update={"compare_to_champion": own})


def gates_for(mv: ModelVersion, deployments: Sequence[ModelDeployment]) -> Gates:
    """The gates `mv` is validated against: its own and those of each deployment that may serve it.

    A deployment's champion comparison is with its own champion. A version is
    validated once, so one deployment's gates reach every deployment of the model
    unless the version names its target.
    """
    serving = serving_deployments(mv, deployments)
    return merge_gates(mv.spec.gates, *(_own_comparison(d) for d in serving))


def metric_gate(gate: MetricGate, metrics: Mapping[str, float]) -> GateResult:
    """``metric op threshold`` on measured `metrics`; a metric not measured fails."""
    name = f"{gate.metric} {gate.op.value} {gate.threshold:g}"
    value = metrics.get(gate.metric)
    if value is None:
        return GateResult(
            gate=name,
            metric=gate.metric,
            threshold=gate.threshold,
            passed=False,
            message=f"{gate.metric!r} was not measured on the held-out rows; measured:"
            f" {sorted(metrics) or 'nothing'}",
        )
    passed = math.isfinite(value) and _OPS[gate.op](value, gate.threshold)
    return GateResult(
        gate=name,
        metric=gate.metric,
        value=value,
        threshold=gate.threshold,
        passed=passed,
        message=f"{gate.metric} is {value:.6g}, "
        + ("meets" if passed else "does not meet")
        + f" {gate.op.value} {gate.threshold:g}",
    )


def champion_gate(
    comparison: ChampionComparison,
    *,
    primary_metric: str,
    candidate: Mapping[str, float],
    champion: ChampionMetrics,
) -> GateResult:
    """The candidate against one champion on the same rows, within the allowed regression.

    The threshold is the worst value the candidate may have: the champion's value
    minus the allowed loss (plus, when lower is better), the loss being absolute
    or a fraction of the champion's magnitude.
    """
    metric = comparison.metric or primary_metric
    higher = higher_is_better(metric, comparison.higher_is_better)
    value, baseline = candidate.get(metric), champion.metrics.get(metric)
    if value is None or baseline is None:
        whose = "the candidate" if value is None else f"champion {champion.model_version}"
        return GateResult(
            gate="compareToChampion",
            metric=metric,
            champion=champion.model_version,
            value=value,
            champion_value=baseline,
            passed=False,
            message=f"{whose} has no {metric!r} measured on the evaluation rows",
        )
    regression = comparison.max_regression
    allowed = (
        regression.absolute
        if regression.absolute is not None
        else (regression.relative or 0.0) * abs(baseline)
    )
    threshold = baseline - allowed if higher else baseline + allowed
    passed = math.isfinite(value) and (value >= threshold if higher else value <= threshold)
    direction = "higher" if higher else "lower"
    return GateResult(
        gate="compareToChampion",
        metric=metric,
        champion=champion.model_version,
        value=value,
        threshold=threshold,
        champion_value=baseline,
        passed=passed,
        message=f"{metric} {value:.6g} vs champion {champion.model_version} {baseline:.6g}"
        f" ({direction} is better, allowed regression {allowed:.6g}): "
        + ("within" if passed else "beyond")
        + " the limit",
    )


def check_results(report: ValidationReport) -> list[GateResult]:
    """The validation Job's checks of the artifact as gate results."""
    return [GateResult(gate=c.name, passed=c.passed, message=c.message) for c in report.checks]


def evaluate_gates(
    gates: Gates,
    *,
    primary_metric: str,
    report: ValidationReport | None,
    champions: Sequence[str] = (),
) -> list[GateResult]:
    """Every gate's result: the artifact checks, the thresholds, then each champion comparison.

    Thresholds and comparisons judge what `report` measured (nothing measured: they
    fail). `champions` names the champion ModelVersions the comparison applies to; each
    must have been measured in `report` (a champion the Job could not evaluate fails
    the gate). No champion means nothing to compare with: the comparison passes.
    """
    results = check_results(report) if report is not None else []
    candidate = report.candidate_metrics if report is not None else {}
    results += [metric_gate(gate, candidate) for gate in gates.metrics]
    comparison = gates.compare_to_champion
    if comparison is None:
        return results
    measured = report.champion_metrics if report is not None else {}
    for name in champions:
        results.append(
            champion_gate(
                comparison,
                primary_metric=primary_metric,
                candidate=candidate,
                champion=ChampionMetrics(name, measured.get(name, {})),
            )
        )
    if not champions:
        results.append(
            GateResult(
                gate="compareToChampion",
                metric=comparison.metric or primary_metric,
                value=candidate.get(comparison.metric or primary_metric),
                passed=True,
                message="no champion serves yet: nothing to compare with",
            )
        )
    return results


def verdict(
    results: Sequence[GateResult], *, require_approval: bool, approval: Approval | None
) -> ModelVersionPhase:
    """Rejected when any result failed; else held for approval when required; else Validated."""
    if not all(r.passed for r in results):
        return ModelVersionPhase.REJECTED
    if require_approval and approval is None:
        return ModelVersionPhase.AWAITING_APPROVAL
    return ModelVersionPhase.VALIDATED
