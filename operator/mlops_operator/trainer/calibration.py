"""The confidence calibration behind estimated accuracy (CBPE) before labels arrive.

Confidence-based performance estimation (NannyML's CBPE) rests on one fact: if a
classifier's top probability is *calibrated*, the mean over a window of the
probability that each prediction is right is the window's expected accuracy, and
that holds under covariate shift (the inputs move, P(label | inputs) does not).
Raw probabilities of forests and boosted trees are not calibrated, so the trainer
fits a monotone map from the top probability to the observed chance of being
right (isotonic regression) on rows the model was not fitted on:

- the held-out split when it has at least `_ENOUGH_ROWS` rows;
- else out-of-fold predictions over the training part as well (k fits of a clone,
  cheap on the small data where the held-out split alone is too thin to calibrate).

The knots go into the model card (`modelcard.Calibration`); the server applies
them to every prediction (`serving.labels`), the evaluator averages them per
window.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline

from mlops_operator.modelcard import Calibration
from mlops_operator.trainer.features import FeatureTable
from mlops_operator.trainer.holdout import Split
from mlops_operator.trainer.pipeline import model_input

__all__ = ["calibration_of", "fit_calibration"]

_ENOUGH_ROWS = 1000
_FOLDS = 5


def fit_calibration(top_probability: npt.NDArray[Any], correct: npt.NDArray[Any]) -> Calibration:
    """The isotonic map from top probability to P(correct), as the card stores it."""
    isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    isotonic.fit(np.asarray(top_probability, dtype=np.float64), np.asarray(correct, dtype=float))
    return Calibration(
        probabilities=[float(x) for x in isotonic.X_thresholds_],
        accuracy=[float(y) for y in isotonic.y_thresholds_],
        rows=len(correct),
    )


def calibration_of(
    pipeline: Pipeline,
    table: FeatureTable,
    split: Split,
    *,
    seed: int,
) -> Calibration:
    """The calibration of the fitted classifier `pipeline` (see the module docstring)."""
    x_train, x_test, y_train, y_test = split
    held_out = pipeline.predict_proba(model_input(table, x_test))
    top = [held_out.max(axis=1)]
    correct = [pipeline.classes_[held_out.argmax(axis=1)] == y_test]
    if len(y_test) < _ENOUGH_ROWS:
        _, counts = np.unique(y_train, return_counts=True)
        folds = min(_FOLDS, int(counts.min()))
        if folds >= 2:
            splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
            out_of_fold = cross_val_predict(
                pipeline, model_input(table, x_train), y_train, cv=splitter, method="predict_proba"
            )
            top.append(out_of_fold.max(axis=1))
            correct.append(pipeline.classes_[out_of_fold.argmax(axis=1)] == y_train)
    return fit_calibration(np.concatenate(top), np.concatenate(correct))
