"""Distribution statistics shared by the trainer, the inference server and DriftPolicy.

The server counts requests into the training reference's bins; Prometheus then
holds per-bin counts and the reference proportions side by side. The functions
here are the one definition of how a value falls into a bin and of PSI, so that
the PromQL expression in ``docs/serving.md`` and any Python evaluation agree.

Bin convention (the model card's ``NumericReference``): with inner edges
``e[0] < … < e[k-1]`` there are ``k + 1`` bins and bin ``i`` holds
``e[i-1] < x <= e[i]``, with ``-inf`` and ``+inf`` closing the ends.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = [
    "PSI_EPSILON",
    "accuracy",
    "bin_counts",
    "bin_indices",
    "drifted_share",
    "psi",
    "rmse",
]

PSI_EPSILON = 1e-4
"""Floor applied to both proportions of a bin before PSI's logarithm.

An empty bin (in the reference or in the observed window) would otherwise make
``ln(a / e)`` infinite. ``1e-4`` is the floor Evidently and most practitioners
use: an empty bin then contributes a large but finite term (for ``e = 0.1``,
``a = 0``: ``(1e-4 - 0.1) * ln(1e-4 / 0.1) ≈ 0.69``), so one vanished decile
reads as a major shift rather than as infinity. PromQL applies the same floor
with ``clamp_min(…, 1e-4)``.
"""


def bin_indices(values: npt.ArrayLike, edges: Sequence[float]) -> npt.NDArray[np.intp]:
    """Bin index of each value under the card's convention (``e[i-1] < x <= e[i]``).

    NaN has no bin; callers drop it before counting (the server counts it apart).
    """
    return np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="left")


def bin_counts(values: npt.ArrayLike, edges: Sequence[float]) -> npt.NDArray[np.int64]:
    """Counts of finite or infinite values per bin (``len(edges) + 1`` of them); NaN is ignored."""
    array = np.asarray(values, dtype=np.float64).ravel()
    array = array[~np.isnan(array)]
    return np.bincount(bin_indices(array, edges), minlength=len(edges) + 1).astype(np.int64)


def psi(
    reference: Sequence[float], counts: Sequence[float], *, epsilon: float = PSI_EPSILON
) -> float:
    """Population stability index of observed bin ``counts`` against ``reference`` proportions.

    ``PSI = Σ (a_i - e_i) · ln(a_i / e_i)`` where ``a_i`` is the observed share of
    bin ``i`` and ``e_i`` the reference share, both floored at ``epsilon``.
    Raises ``ValueError`` when the lengths differ or nothing was observed.
    """
    if len(reference) != len(counts):
        raise ValueError(
            f"reference has {len(reference)} bins but counts has {len(counts)}; "
            "expected one count per reference bin"
        )
    total = float(sum(counts))
    if total <= 0:
        raise ValueError("no observations: PSI needs at least one counted value")
    score = 0.0
    for expected, count in zip(reference, counts, strict=True):
        actual = max(count / total, epsilon)
        floored = max(expected, epsilon)
        score += (actual - floored) * math.log(actual / floored)
    return score


def drifted_share(scores: Sequence[float], threshold: float) -> float:
    """Share of ``scores`` (one PSI per feature) at or above ``threshold``.

    Raises ``ValueError`` when there are no scores: a share of nothing is undefined.
    """
    if not scores:
        raise ValueError("no feature scores: the share of drifted features needs at least one")
    return sum(1 for score in scores if score >= threshold) / len(scores)


def accuracy(correct: float, total: float) -> float:
    """Share of labelled predictions that were right: ``correct / total``.

    Raises ``ValueError`` when nothing was labelled or ``correct`` exceeds ``total``.
    """
    if total <= 0:
        raise ValueError("no labelled predictions: accuracy needs at least one")
    if not 0 <= correct <= total:
        raise ValueError(f"correct must lie in [0, total={total}]; got {correct}")
    return correct / total


def rmse(squared_error: float, total: float) -> float:
    """Root mean squared error from the sum of squared errors over ``total`` labelled rows.

    Raises ``ValueError`` when nothing was labelled or the sum is negative.
    """
    if total <= 0:
        raise ValueError("no labelled predictions: RMSE needs at least one")
    if squared_error < 0:
        raise ValueError(f"a sum of squared errors is never negative; got {squared_error}")
    return math.sqrt(squared_error / total)
