"""Every drift statistic against values computed independently (scipy, scikit-learn, by hand).

Aspects: PSI against scipy's relative entropy (PSI is the symmetric KL divergence of the
floored shares), with empty bins on either side, one-class traffic and zero traffic; the
share of drifted features; accuracy and RMSE against scikit-learn, including their refusals.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import rel_entr
from sklearn.metrics import accuracy_score, mean_squared_error

from mlops_operator.distributions import PSI_EPSILON, accuracy, drifted_share, psi, rmse


def scipy_psi(reference: list[float], counts: list[float]) -> float:
    """Σ (a−e)·ln(a/e) = Σ a·ln(a/e) + e·ln(e/a), on shares floored at the documented epsilon."""
    actual = np.maximum(np.asarray(counts, dtype=float) / sum(counts), PSI_EPSILON)
    expected = np.maximum(np.asarray(reference, dtype=float), PSI_EPSILON)
    return float(np.sum(rel_entr(actual, expected) + rel_entr(expected, actual)))


@pytest.mark.parametrize("seed", range(5))
def test_psi_equals_the_symmetric_relative_entropy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.dirichlet(np.ones(10)).tolist()
    counts = rng.integers(0, 500, size=10).tolist()
    assert psi(reference, counts) == pytest.approx(scipy_psi(reference, counts), rel=1e-12)


def test_empty_observed_and_empty_reference_bins() -> None:
    reference, counts = [0.0, 0.2, 0.3, 0.5], [10, 0, 30, 60]
    value = psi(reference, counts)
    assert value == pytest.approx(scipy_psi(reference, counts), rel=1e-12)
    # By hand: bin 0 appeared (0.1 vs ε), bin 1 vanished (ε vs 0.2), the others moved a little.
    by_hand = (
        (0.1 - 1e-4) * math.log(0.1 / 1e-4)
        + (1e-4 - 0.2) * math.log(1e-4 / 0.2)
        + 0.0
        + (0.6 - 0.5) * math.log(0.6 / 0.5)
    )
    assert value == pytest.approx(by_hand, rel=1e-12)


def test_one_class_traffic_is_a_large_finite_shift() -> None:
    reference = [1 / 3, 1 / 3, 1 / 3]
    value = psi(reference, [0, 250, 0])
    assert math.isfinite(value)
    assert value == pytest.approx(scipy_psi(reference, [0, 250, 0]), rel=1e-12)
    assert value > 2.0


def test_zero_traffic_has_no_psi() -> None:
    with pytest.raises(ValueError, match="no observations"):
        psi([0.5, 0.5], [0, 0])


def test_drifted_share_counts_scores_at_or_above_the_threshold() -> None:
    assert drifted_share([0.1, 0.25, 0.3, 0.0], 0.25) == 0.5
    assert drifted_share([0.0], 0.25) == 0.0
    with pytest.raises(ValueError, match="at least one"):
        drifted_share([], 0.25)


def test_accuracy_matches_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, 400)
    predicted = np.where(rng.random(400) < 0.8, truth, (truth + 1) % 3)
    correct = int(np.sum(truth == predicted))
    assert accuracy(correct, len(truth)) == pytest.approx(accuracy_score(truth, predicted))


def test_rmse_matches_scikit_learn() -> None:
    rng = np.random.default_rng(2)
    truth, predicted = rng.normal(size=300), rng.normal(size=300)
    squared = float(np.sum((truth - predicted) ** 2))
    expected = math.sqrt(mean_squared_error(truth, predicted))
    assert rmse(squared, len(truth)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: accuracy(0, 0), "no labelled predictions"),
        (lambda: accuracy(5, 4), r"correct must lie in \[0, total=4\]"),
        (lambda: rmse(1.0, 0), "no labelled predictions"),
        (lambda: rmse(-1.0, 3), "never negative"),
    ],
)
def test_decay_statistics_refuse_impossible_input(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]
