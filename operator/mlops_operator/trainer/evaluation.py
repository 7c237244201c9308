"""The held-out metrics of the fitted pipeline, and optional k-fold cross-validation.

The split itself is `holdout`'s, which the validator shares."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import clone
from sklearn.model_selection import KFold, StratifiedKFold, cross_validate
from sklearn.pipeline import Pipeline

from mlops_operator.modelcard import Task
from mlops_operator.trainer.features import FeatureTable
from mlops_operator.trainer.pipeline import model_input
from mlops_operator.trainer.scoring import scores

__all__ = ["cross_validation_metrics", "held_out_metrics"]

_CV_SCORING: dict[Task, dict[str, str]] = {
    "classification": {
        "accuracy": "accuracy",
        "balanced_accuracy": "balanced_accuracy",
        "f1_macro": "f1_macro",
    },
    "regression": {
        "rmse": "neg_root_mean_squared_error",
        "mae": "neg_mean_absolute_error",
        "r2": "r2",
    },
}


def held_out_metrics(
    pipeline: Pipeline, table: FeatureTable, x_test: Any, y_test: npt.NDArray[Any], task: Task
) -> dict[str, float]:
    """Metrics of the fitted pipeline on the held-out rows."""
    features = model_input(table, x_test)
    predicted = pipeline.predict(features)
    if task == "regression":
        return scores(task, y_test, predicted)
    return scores(task, y_test, predicted, pipeline.predict_proba(features), pipeline.classes_)


def cross_validation_metrics(
    pipeline: Pipeline,
    table: FeatureTable,
    x_train: Any,
    y_train: npt.NDArray[Any],
    task: Task,
    *,
    folds: int,
    seed: int,
) -> dict[str, float]:
    """Mean and standard deviation of each metric over ``folds`` folds of the training rows."""
    splitter = (
        StratifiedKFold(folds, shuffle=True, random_state=seed)
        if task == "classification"
        else KFold(folds, shuffle=True, random_state=seed)
    )
    scoring = _CV_SCORING[task]
    scores = cross_validate(
        clone(pipeline), model_input(table, x_train), y_train, cv=splitter, scoring=scoring
    )
    result: dict[str, float] = {}
    for name, scorer in scoring.items():
        values = scores[f"test_{name}"] * (-1.0 if scorer.startswith("neg_") else 1.0)
        result[f"cv_{name}_mean"] = float(np.mean(values))
        result[f"cv_{name}_std"] = float(np.std(values))
    return result
