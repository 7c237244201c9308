"""Reference distributions for drift: what the training data and predictions looked like.

The inference server exports per-feature bin counters beside these
proportions, so drift (PSI and the like) can be computed over any window. Bins
follow :class:`~mlops_operator.modelcard.NumericReference`: inner edges are the
training deciles (deduplicated), bin ``i`` holds ``edges[i-1] < x <= edges[i]``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from mlops_operator.modelcard import (
    CategoricalReference,
    NumericReference,
    PredictionReference,
    Task,
)
from mlops_operator.trainer.features import FeatureTable

__all__ = [
    "MAX_CATEGORIES",
    "categorical_reference",
    "feature_references",
    "numeric_reference",
    "prediction_reference",
]

MAX_CATEGORIES = 100
"""Categories kept by frequency; the rest count as ``__other__`` (keeps the card small)."""

_DECILES = np.linspace(0.1, 0.9, 9)


def numeric_reference(values: npt.NDArray[np.float64]) -> NumericReference:
    """Decile edges and the proportion of values in each bin; missing values are left out."""
    present = values[~np.isnan(values)]
    edges = np.unique(np.quantile(present, _DECILES))
    counts = np.bincount(np.searchsorted(edges, present, side="left"), minlength=len(edges) + 1)
    return NumericReference(
        edges=[float(edge) for edge in edges],
        proportions=[float(count) for count in counts / len(present)],
    )


def categorical_reference(values: Sequence[str]) -> CategoricalReference:
    """Frequencies of the most common categories, then of all the others together."""
    counts = Counter(values)
    kept = sorted(counts, key=lambda category: (-counts[category], category))[:MAX_CATEGORIES]
    total = len(values)
    other = total - sum(counts[category] for category in kept)
    return CategoricalReference(
        categories=kept,
        proportions=[counts[category] / total for category in kept] + [other / total],
    )


def feature_references(
    table: FeatureTable, x_train: pd.DataFrame
) -> dict[str, NumericReference | CategoricalReference]:
    """Per feature, its distribution over the training rows."""
    references: dict[str, NumericReference | CategoricalReference] = {}
    for name in x_train.columns:
        if name in table.categorical:
            references[name] = categorical_reference(list(x_train[name]))
        else:
            references[name] = numeric_reference(x_train[name].to_numpy(dtype="float64"))
    return references


def prediction_reference(
    predictions: npt.NDArray[Any], task: Task, classes: list[str] | None
) -> PredictionReference:
    """The distribution of the model's predictions on the training rows."""
    if task == "regression" or classes is None:
        binned = numeric_reference(predictions.astype("float64"))
        return PredictionReference(edges=binned.edges, proportions=binned.proportions)
    labels = Counter(str(label) for label in predictions)
    return PredictionReference(
        classes=classes, proportions=[labels[label] / len(predictions) for label in classes]
    )
