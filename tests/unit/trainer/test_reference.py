"""Reference distributions: bins exactly as the model card defines them.

Aspects: decile edges and which bin a value on an edge falls in; repeated
values collapse edges; missing values are left out; categories by frequency,
capped, with the rest as other; the prediction distribution for both tasks.
"""

from __future__ import annotations

import numpy as np
import pytest

from mlops_operator.trainer.reference import (
    MAX_CATEGORIES,
    categorical_reference,
    numeric_reference,
    prediction_reference,
)


def test_decile_edges_and_proportions() -> None:
    reference = numeric_reference(np.arange(1.0, 101.0))

    assert reference.edges == pytest.approx([10.9, 20.8, 30.7, 40.6, 50.5, 60.4, 70.3, 80.2, 90.1])
    assert reference.proportions == pytest.approx([0.1] * 10)


def test_a_value_on_an_edge_falls_in_the_bin_below() -> None:
    reference = numeric_reference(np.array([1.0] * 5 + [2.0] * 5))

    # Both values repeat, so the nine deciles collapse to the edges 1.0, 1.5 and 2.0.
    assert reference.edges == [1.0, 1.5, 2.0]
    assert reference.proportions == [0.5, 0.0, 0.5, 0.0]


def test_missing_values_are_left_out() -> None:
    reference = numeric_reference(np.array([np.nan, 1.0, 2.0, np.nan]))

    assert sum(reference.proportions) == pytest.approx(1.0)
    assert all(np.isfinite(reference.edges))


def test_categories_by_frequency_then_name_and_the_rest_as_other() -> None:
    values = ["b", "a", "b", "c", "a", "b"]

    reference = categorical_reference(values)

    assert reference.categories == ["b", "a", "c"]
    assert reference.proportions == pytest.approx([0.5, 1 / 3, 1 / 6, 0.0])


def test_rare_categories_beyond_the_cap_count_as_other() -> None:
    values = [f"c{i:03d}" for i in range(MAX_CATEGORIES + 20)] + ["c000"]

    reference = categorical_reference(values)

    assert len(reference.categories) == MAX_CATEGORIES
    assert reference.categories[0] == "c000"
    assert reference.proportions[-1] == pytest.approx(20 / len(values))


def test_prediction_distributions() -> None:
    labels = prediction_reference(np.array([0, 1, 1, 1]), "classification", ["0", "1", "2"])
    values = prediction_reference(np.arange(10.0), "regression", None)

    assert (labels.classes, labels.proportions) == (["0", "1", "2"], [0.25, 0.75, 0.0])
    assert values.classes is None
    assert values.edges is not None
    assert len(values.proportions) == len(values.edges) + 1
