"""The held-out metrics of a model's predictions, in numpy alone.

The trainer scores its fitted pipeline with :func:`scores`, and the validator the ONNX
model on the same rows: one implementation, so a gate judges the validator's figure by
the trainer's definition. The metrics are scikit-learn's (equal to 1.9's, tested), with
two choices of ours:

- probabilities are clipped at float32's epsilon, whatever their dtype: onnxruntime
  answers in float32 and scikit-learn in float64, and a class given probability 0 would
  otherwise cost the log loss 36 on the trainer's side and 16 on the validator's;
- column j of the probabilities is `classes[j]`'s (the model's output order), where
  scikit-learn's log loss reads the columns in the classes' sorted order, whatever order
  it is given ("10" before "2").

scikit-learn is not imported: it costs a validator pod about a CPU-second to load.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops_operator.modelcard import Task

__all__ = ["PROBABILITY_EPSILON", "scores"]

_log = logging.getLogger(__name__)

PROBABILITY_EPSILON = float(np.finfo(np.float32).eps)
"""Probabilities are clipped to [ε, 1 - ε] for the log loss."""


class _Undefined(Exception):
    """ROC AUC has no value on these rows."""


def scores(
    task: Task,
    y_true: npt.ArrayLike,
    predicted: npt.ArrayLike,
    probabilities: npt.ArrayLike | None = None,
    classes: npt.ArrayLike | None = None,
) -> dict[str, float]:
    """The held-out metrics of any model's predictions.

    Classification needs `probabilities` (column j for `classes[j]`); its metrics come
    sorted by name, ROC AUC left out (with a warning) where it is undefined. A true label
    that is not one of `classes` (a champion that never learnt it) is a ValueError.
    """
    if task == "regression":
        return _regression(np.asarray(y_true, np.float64), np.asarray(predicted, np.float64))
    if probabilities is None or classes is None:
        raise ValueError("classification metrics need the probabilities and the classes")
    truth, guess, names = np.asarray(y_true), np.asarray(predicted), np.asarray(classes)
    proba = np.asarray(probabilities, np.float64)
    if not (np.isfinite(proba).all() and proba.min() >= 0 and proba.max() <= 1):
        raise ValueError("the probabilities are not all within [0, 1]")
    labels, codes = np.unique(np.concatenate([truth, guess]), return_inverse=True)
    result = {
        "accuracy": float(np.mean(truth == guess)),
        **_confusion_scores(codes[: len(truth)], codes[len(truth) :], len(labels)),
        "log_loss": _log_loss(truth, proba, names),
    }
    try:
        result["roc_auc"] = _roc_auc(truth, proba, names)
    except _Undefined as reason:
        # A champion's class absent from the candidate's held-out rows, say; the rest stands.
        _log.warning("ROC AUC left out: %s", reason)
    return dict(sorted(result.items()))


def _confusion_scores(
    truth: npt.NDArray[np.intp], guess: npt.NDArray[np.intp], count: int
) -> dict[str, float]:
    """Balanced accuracy and macro F1 over the labels of `truth` and `guess` together."""
    matrix = np.bincount(truth * count + guess, minlength=count * count).reshape(count, count)
    hits = np.diagonal(matrix)
    support = matrix.sum(axis=1)
    # A label only ever predicted has no recall: dropped from the mean, not counted as 0.
    present = support > 0
    # Every label occurs in one of the two, so no F1 denominator is 0.
    f1 = 2.0 * hits / (support + matrix.sum(axis=0))
    return {
        "balanced_accuracy": float(np.mean(hits[present] / support[present])),
        "f1_macro": float(np.mean(f1)),
    }


def _log_loss(
    truth: npt.NDArray[Any], proba: npt.NDArray[np.float64], classes: npt.NDArray[Any]
) -> float:
    order = np.argsort(classes, kind="stable")
    found = np.minimum(np.searchsorted(classes[order], truth), len(classes) - 1)
    unknown = classes[order][found] != truth
    if unknown.any():
        raise ValueError(
            f"y_true holds {truth[unknown].tolist()[0]!r}, which is not one of the classes"
        )
    chosen = proba[np.arange(len(truth)), order[found]]
    return float(np.mean(-np.log(np.clip(chosen, PROBABILITY_EPSILON, 1 - PROBABILITY_EPSILON))))


def _roc_auc(
    truth: npt.NDArray[Any], proba: npt.NDArray[np.float64], classes: npt.NDArray[Any]
) -> float:
    """Binary ROC AUC of classes[1], or the macro one-vs-rest mean over three classes or more."""
    if len(classes) == 2:
        return _binary_auc(truth == classes[1], proba[:, 1])
    if not np.allclose(1, proba.sum(axis=1)):
        raise _Undefined("the probabilities of a row do not sum to 1")
    absent = ~np.isin(classes, truth)
    if absent.any():
        raise _Undefined(f"class {classes[absent].tolist()[0]!r} has no held-out rows")
    return float(np.mean([_binary_auc(truth == c, proba[:, j]) for j, c in enumerate(classes)]))


def _binary_auc(positive: npt.NDArray[np.bool_], score: npt.NDArray[np.float64]) -> float:
    """The area under the ROC curve, as the Mann–Whitney statistic with ties counted half
    (exactly the trapezoidal area under the curve through the distinct scores)."""
    positives = int(np.count_nonzero(positive))
    negatives = len(positive) - positives
    if positives == 0 or negatives == 0:
        raise _Undefined("only one class is present in the held-out rows")
    values, groups = np.unique(score, return_inverse=True)
    positive_at = np.bincount(groups, weights=positive, minlength=len(values))
    negative_at = np.bincount(groups, weights=~positive, minlength=len(values))
    negative_below = np.cumsum(negative_at) - negative_at
    wins = np.sum(positive_at * (negative_below + 0.5 * negative_at))
    return float(wins / (positives * negatives))


def _regression(truth: npt.NDArray[np.float64], guess: npt.NDArray[np.float64]) -> dict[str, float]:
    residual = float(np.sum((truth - guess) ** 2))
    spread = float(np.sum((truth - truth.mean()) ** 2))
    # scikit-learn's force_finite: of a constant target, perfect predictions score 1 and
    # others 0, rather than NaN or -inf.
    r2 = 1 - residual / spread if spread else float(residual == 0)
    return {
        "rmse": float(np.sqrt(residual / len(truth))),
        "mae": float(np.mean(np.abs(truth - guess))),
        "r2": r2,
    }
