"""Judging live windows: the quantile maths, each limit, and the champion comparison."""

from __future__ import annotations

import math

import pytest

from mlops_operator.api.modeldeployment import Analysis, RollbackFloors
from mlops_operator.decisions.analysis import (
    LiveCounts,
    Outcome,
    agreement,
    judge_challenger,
    judge_floors,
    quantile,
)

INF = math.inf


def test_quantile_interpolates_like_histogram_quantile() -> None:
    buckets = {0.005: 50.0, 0.01: 90.0, 0.1: 100.0, INF: 100.0}
    assert quantile(0.5, buckets) == pytest.approx(0.005)
    assert quantile(0.7, buckets) == pytest.approx(0.0075)
    assert quantile(0.99, buckets) == pytest.approx(0.01 + 0.09 * 0.9)
    # A rank in the +Inf bucket answers the highest finite bound.
    assert quantile(0.99, {0.1: 50.0, INF: 100.0}) == 0.1
    assert quantile(0.99, {0.1: 0.0, INF: 0.0}) is None
    assert quantile(0.99, {}) is None


def _counts(requests: float, errors: float = 0.0, slow: bool = False, **bins: float) -> LiveCounts:
    if slow:
        latency = {0.25: 0.0, 1.0: requests, INF: requests}
    else:
        latency = {0.005: requests, 0.25: requests, 1.0: requests, INF: requests}
    return LiveCounts(requests, errors, latency, prediction_bins=bins)


def test_too_few_requests_is_inconclusive() -> None:
    judgement = judge_challenger(Analysis(minRequests=50), _counts(10), None)
    assert judgement.outcome is Outcome.INCONCLUSIVE
    assert "10 requests so far; 50 needed" in judgement.message


def test_each_limit_fails_with_its_evidence() -> None:
    analysis = Analysis(
        minRequests=10, maxErrorRate=0.01, maxP99LatencyMs=100, maxP99LatencyRatio=3
    )
    judgement = judge_challenger(analysis, _counts(100, errors=5, slow=True), _counts(100))
    assert judgement.outcome is Outcome.FAILED
    assert judgement.evidence["errorRate"] == 0.05
    assert judgement.evidence["p99LatencyMs"] > 900
    assert judgement.evidence["champion.p99LatencyMs"] < 5
    assert len(judgement.failures) == 3
    assert "error rate 0.05 above 0.01" in judgement.message


def test_a_healthy_challenger_passes() -> None:
    analysis = Analysis(minRequests=10, maxP99LatencyMs=100)
    judgement = judge_challenger(analysis, _counts(100), _counts(100))
    assert judgement.outcome is Outcome.PASSED
    assert judgement.evidence["errorRate"] == 0.0


def test_agreement_and_prediction_psi_compare_distributions() -> None:
    same = agreement(_counts(10, a=5, b=5), _counts(10, a=50, b=50))
    assert same == pytest.approx(1.0)
    half = agreement(_counts(10, a=10), _counts(10, a=5, b=5))
    assert half == pytest.approx(0.5)
    analysis = Analysis(minRequests=10, maxPredictionPsi=0.2)
    judgement = judge_challenger(analysis, _counts(20, a=20), _counts(20, a=10, b=10))
    assert judgement.outcome is Outcome.FAILED
    assert judgement.evidence["agreement"] == pytest.approx(0.5)


def test_a_comparison_that_cannot_be_made_yet_is_inconclusive() -> None:
    # A shadow whose champion has no predictions counted in the window (its pods
    # just restarted, say) has not shown agreement: it must wait, not pass.
    analysis = Analysis(minRequests=10)
    uncounted = _counts(100)
    shadow = judge_challenger(analysis, _counts(100, a=100), uncounted, compare=True)
    assert shadow.outcome is Outcome.INCONCLUSIVE
    assert "not yet counted" in shadow.message
    counted = judge_challenger(
        analysis, _counts(100, a=100), _counts(100, a=90, b=10), compare=True
    )
    assert counted.outcome is Outcome.PASSED
    assert counted.evidence["agreement"] == pytest.approx(0.9)
    # Not asked to compare (a canary at 100 %, say): the limits alone decide.
    assert judge_challenger(analysis, _counts(100), uncounted).outcome is Outcome.PASSED


def test_a_crossed_limit_fails_even_without_the_comparison() -> None:
    # A shadow failing every request predicts nothing: it must be withdrawn, not awaited.
    broken = judge_challenger(Analysis(minRequests=10), _counts(100, errors=100), _counts(100),
                              compare=True)  # fmt: skip
    assert broken.outcome is Outcome.FAILED
    assert "error rate 1 above 0.01" in broken.message


def test_live_accuracy_needs_enough_labels() -> None:
    analysis = Analysis(minRequests=10, minAccuracy=0.9)
    # Too few labels, or no judged window yet: no accuracy evidence, so no verdict either way.
    few = LiveCounts(requests=100, labelled=5, realized_accuracy=0.2)
    waiting = judge_challenger(analysis, few, None)
    assert waiting.outcome is Outcome.INCONCLUSIVE
    assert "no judged window of realized accuracy" in waiting.message
    unjudged = LiveCounts(requests=100, labelled=0, realized_accuracy=None)
    assert judge_challenger(analysis, unjudged, None).outcome is Outcome.INCONCLUSIVE
    # A crossed limit still fails at once, labels or not.
    failing = LiveCounts(requests=100, errors=100, labelled=0, realized_accuracy=None)
    assert judge_challenger(analysis, failing, None).outcome is Outcome.FAILED
    # Without minAccuracy, labels are not waited for.
    assert judge_challenger(Analysis(minRequests=10, maxErrorRate=0.1), unjudged, None).outcome is (
        Outcome.PASSED
    )
    good = LiveCounts(requests=100, labelled=50, realized_accuracy=0.95)
    assert judge_challenger(analysis, good, None).outcome is Outcome.PASSED
    many = LiveCounts(requests=100, labelled=50, realized_accuracy=0.8)
    judgement = judge_challenger(analysis, many, None)
    assert judgement.outcome is Outcome.FAILED
    assert judgement.evidence["accuracy"] == 0.8


def test_floors() -> None:
    floors = RollbackFloors(minRequests=10, maxErrorRate=0.02)
    assert judge_floors(floors, _counts(5, errors=5)).outcome is Outcome.INCONCLUSIVE
    assert judge_floors(floors, _counts(100, errors=1)).outcome is Outcome.PASSED
    breached = judge_floors(floors, _counts(100, errors=10))
    assert breached.outcome is Outcome.FAILED
    assert "above the floor 0.02" in breached.message
