"""The shared statistics: the bin convention of the model card and PSI with its epsilon."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlops_operator.distributions import PSI_EPSILON, bin_counts, bin_indices, psi


def test_bins_are_closed_on_the_right() -> None:
    edges = [1.0, 2.0]
    values = [-math.inf, 0.5, 1.0, 1.5, 2.0, 2.5, math.inf]
    assert bin_indices(values, edges).tolist() == [0, 0, 0, 1, 1, 2, 2]


def test_bin_counts_ignore_nan_and_cover_every_bin() -> None:
    assert bin_counts([0.0, np.nan, 5.0, 5.0], [1.0, 2.0]).tolist() == [1, 0, 2]


def test_psi_of_identical_distributions_is_zero() -> None:
    assert psi([0.25, 0.25, 0.5], [10, 10, 20]) == pytest.approx(0.0)


def test_psi_matches_the_textbook_formula() -> None:
    reference, counts = [0.5, 0.5], [30, 70]
    expected = (0.3 - 0.5) * math.log(0.3 / 0.5) + (0.7 - 0.5) * math.log(0.7 / 0.5)
    assert psi(reference, counts) == pytest.approx(expected)


def test_empty_bins_are_floored_at_epsilon() -> None:
    value = psi([0.5, 0.5, 0.0], [0, 10, 0])
    expected = (PSI_EPSILON - 0.5) * math.log(PSI_EPSILON / 0.5) + 0.5 * math.log(1 / 0.5)
    assert value == pytest.approx(expected)
    assert math.isfinite(value)


@pytest.mark.parametrize(
    ("reference", "counts", "message"),
    [([0.5, 0.5], [1, 2, 3], "reference has 2 bins but counts has 3"), ([1.0], [0], "no obs")],
)
def test_psi_refuses_mismatched_or_empty_input(
    reference: list[float], counts: list[int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        psi(reference, counts)
