"""Judging live traffic: a challenger during a canary or shadow, a champion against its floors.

The handlers gather one `LiveCounts` per version over a window, from Prometheus
(``increase(...[window])``) or from the pods' ``/metrics`` directly; everything
after that is here, so both sources share the maths. A judgement is `PASSED`,
`FAILED` (with every limit crossed), or `INCONCLUSIVE` while too few requests
were seen to say anything; each carries its evidence (the numbers measured).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from mlops_operator.api.modeldeployment import Analysis, RollbackFloors
from mlops_operator.distributions import psi

__all__ = [
    "Judgement",
    "LiveCounts",
    "Outcome",
    "agreement",
    "error_rate",
    "judge_challenger",
    "judge_floors",
    "live_accuracy",
    "prediction_psi",
    "quantile",
]

_MIN_FEEDBACK = 10
"""Labelled rows below which live accuracy is not judged (a handful of labels says little)."""


@dataclass(frozen=True)
class LiveCounts:
    """What one version served in a window: counter increases summed over its pods."""

    requests: float = 0.0
    """Inference requests answered, whatever the outcome."""
    errors: float = 0.0
    """Of those, the server's own failures (HTTP 5xx); client mistakes (4xx) are not errors."""
    latency_buckets: Mapping[float, float] = field(default_factory=dict)
    """Cumulative latency histogram: upper bound in seconds (``inf`` last) -> requests at most that."""
    labelled: float = 0.0
    """Labelled rows of the version's judged window (the evaluator's, by prediction time)."""
    realized_accuracy: float | None = None
    """Realized accuracy of that window; None until a window's labels reached the coverage."""
    prediction_bins: Mapping[str, float] = field(default_factory=dict)
    """Predictions per class (classification) or per reference bin (regression)."""


class Outcome(StrEnum):
    """The verdict on a window."""

    PASSED = "Passed"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"


@dataclass(frozen=True)
class Judgement:
    """A verdict with the numbers behind it and, when failed, every limit crossed."""

    outcome: Outcome
    evidence: dict[str, float]
    failures: tuple[str, ...] = ()
    message: str = ""


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The `q` quantile of a cumulative histogram, as Prometheus' ``histogram_quantile`` computes it.

    Linear interpolation inside the bucket that holds the rank; the lowest bucket
    starts at 0; a rank in the ``+Inf`` bucket answers the highest finite bound.
    None when the histogram is empty.
    """
    bounds = sorted(buckets)
    if not bounds or not math.isinf(bounds[-1]):
        return None
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def error_rate(counts: LiveCounts) -> float | None:
    """Share of requests the server failed; None without requests."""
    return counts.errors / counts.requests if counts.requests > 0 else None


def live_accuracy(counts: LiveCounts) -> float | None:
    """Realized accuracy of the judged window; None with too few labels to judge."""
    if counts.labelled < _MIN_FEEDBACK:
        return None
    return counts.realized_accuracy


def _distributions(a: LiveCounts, b: LiveCounts) -> tuple[list[float], list[float]] | None:
    bins = sorted(set(a.prediction_bins) | set(b.prediction_bins))
    left = [a.prediction_bins.get(k, 0.0) for k in bins]
    right = [b.prediction_bins.get(k, 0.0) for k in bins]
    if sum(left) <= 0 or sum(right) <= 0:
        return None
    return left, right


def prediction_psi(challenger: LiveCounts, champion: LiveCounts) -> float | None:
    """PSI of the challenger's predictions against the champion's, over the same bins."""
    found = _distributions(challenger, champion)
    if found is None:
        return None
    observed, reference = found
    total = sum(reference)
    return psi([r / total for r in reference], observed)


def agreement(challenger: LiveCounts, champion: LiveCounts) -> float | None:
    """How alike the two prediction distributions are: 1 minus their total variation distance.

    With every request mirrored (shadow), both saw the same inputs, so 1.0 means
    the same mix of answers; it bounds per-request agreement from above (two models
    can swap answers between rows and still match in distribution).
    """
    found = _distributions(challenger, champion)
    if found is None:
        return None
    left, right = found
    a, b = sum(left), sum(right)
    return 1.0 - 0.5 * sum(abs(x / a - y / b) for x, y in zip(left, right, strict=True))


def _evidence(counts: LiveCounts, prefix: str = "") -> dict[str, float]:
    found: dict[str, float] = {f"{prefix}requests": counts.requests}
    rate = error_rate(counts)
    if rate is not None:
        found[f"{prefix}errorRate"] = rate
    p99 = quantile(0.99, counts.latency_buckets)
    if p99 is not None:
        found[f"{prefix}p99LatencyMs"] = p99 * 1000.0
    live = live_accuracy(counts)
    if live is not None:
        found[f"{prefix}accuracy"] = live
    return found


def _above(value: float | None, limit: float | None) -> bool:
    return value is not None and limit is not None and value > limit


def judge_challenger(
    analysis: Analysis,
    challenger: LiveCounts,
    champion: LiveCounts | None,
    *,
    compare: bool = False,
) -> Judgement:
    """The challenger's window against the absolute limits and against the champion's window.

    `compare`: the two versions' predictions must be compared before the window can
    pass (a shadow, which exists to measure that; a canary with ``maxPredictionPsi``
    while the champion still serves). A window that crosses no limit but lacks that
    comparison, because one side has no predictions counted in it yet, is
    inconclusive; a crossed limit fails the window whatever else is missing.
    """
    evidence = _evidence(challenger)
    if champion is not None:
        evidence |= _evidence(champion, "champion.")
        for name, value in (
            ("predictionPsi", prediction_psi(challenger, champion)),
            ("agreement", agreement(challenger, champion)),
        ):
            if value is not None:
                evidence[name] = value
    if challenger.requests < analysis.min_requests:
        return Judgement(
            Outcome.INCONCLUSIVE,
            evidence,
            message=f"{challenger.requests:.0f} requests so far; {analysis.min_requests} needed"
            " to judge",
        )
    failures = []
    rate = evidence.get("errorRate", 0.0)
    if rate > analysis.max_error_rate:
        failures.append(f"error rate {rate:.3g} above {analysis.max_error_rate:g}")
    p99 = evidence.get("p99LatencyMs")
    if _above(p99, analysis.max_p99_latency_ms):
        failures.append(f"p99 latency {p99:.1f} ms above {analysis.max_p99_latency_ms:g} ms")
    baseline = evidence.get("champion.p99LatencyMs")
    if analysis.max_p99_latency_ratio is not None and p99 is not None and baseline:
        ratio = p99 / baseline
        evidence["p99LatencyRatio"] = ratio
        if ratio > analysis.max_p99_latency_ratio:
            failures.append(
                f"p99 latency {ratio:.2f}x the champion's, above"
                f" {analysis.max_p99_latency_ratio:g}x"
            )
    live = evidence.get("accuracy")
    if analysis.min_accuracy is not None and live is not None and live < analysis.min_accuracy:
        failures.append(f"live accuracy {live:.3g} below {analysis.min_accuracy:g}")
    shift = evidence.get("predictionPsi")
    if _above(shift, analysis.max_prediction_psi):
        failures.append(
            f"prediction PSI against the champion {shift:.3g} above {analysis.max_prediction_psi:g}"
        )
    if failures:
        return Judgement(Outcome.FAILED, evidence, tuple(failures), "; ".join(failures))
    if compare and "agreement" not in evidence:
        return Judgement(
            Outcome.INCONCLUSIVE,
            evidence,
            message="predictions of both versions not yet counted in the window to compare them",
        )
    if analysis.min_accuracy is not None and live is None:
        # Asked for, accuracy is evidence a window must have: a challenger whose labels have
        # not arrived (or not reached feedback.minLabelCoverage) waits; it never passes unseen.
        return Judgement(
            Outcome.INCONCLUSIVE,
            evidence,
            message=f"{challenger.labelled:.0f} labelled predictions: no judged window of realized"
            " accuracy yet (feedback.minLabelCoverage) to hold against minAccuracy",
        )
    return Judgement(
        Outcome.PASSED, evidence, message=f"{challenger.requests:.0f} requests within every limit"
    )


def judge_floors(floors: RollbackFloors, champion: LiveCounts) -> Judgement:
    """The champion's window against the rollback floors set after its promotion."""
    evidence = _evidence(champion)
    if champion.requests < floors.min_requests:
        return Judgement(
            Outcome.INCONCLUSIVE,
            evidence,
            message=f"{champion.requests:.0f} requests in the window; {floors.min_requests} needed",
        )
    failures = []
    rate = evidence.get("errorRate", 0.0)
    if floors.max_error_rate is not None and rate > floors.max_error_rate:
        failures.append(f"error rate {rate:.3g} above the floor {floors.max_error_rate:g}")
    p99 = evidence.get("p99LatencyMs")
    if _above(p99, floors.max_p99_latency_ms):
        failures.append(f"p99 latency {p99:.1f} ms above {floors.max_p99_latency_ms:g} ms")
    live = evidence.get("accuracy")
    if floors.min_accuracy is not None and live is not None and live < floors.min_accuracy:
        failures.append(f"live accuracy {live:.3g} below the floor {floors.min_accuracy:g}")
    if failures:
        return Judgement(Outcome.FAILED, evidence, tuple(failures), "; ".join(failures))
    return Judgement(Outcome.PASSED, evidence, message="within the floors")
