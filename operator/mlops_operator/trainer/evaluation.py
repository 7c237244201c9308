"""The held-out split, the metrics, and optional k-fold cross-validation."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn import metrics
from sklearn.base import clone
from sklearn.model_selection import KFold, StratifiedKFold, cross_validate, train_test_split
from sklearn.pipeline import Pipeline

from mlops_operator.modelcard import Task
from mlops_operator.trainer.errors import Reason, TrainingError
from mlops_operator.trainer.features import FeatureTable
from mlops_operator.trainer.pipeline import model_input

__all__ = ["Split", "cross_validation_metrics", "held_out_metrics", "scores", "split"]

_log = logging.getLogger(__name__)

Split = tuple[Any, Any, npt.NDArray[Any], npt.NDArray[Any]]

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


def split(table: FeatureTable, task: Task, *, test_size: float, seed: int, cv_folds: int) -> Split:
    """Train and held-out parts (stratified for classification), after checking there are rows enough."""
    rows = len(table.y)
    held_out = math.ceil(test_size * rows)
    training = rows - held_out
    if task == "classification":
        classes, counts = np.unique(table.y, return_counts=True)
        needed = len(classes)
        scarce = classes[counts < 2]
        if scarce.size:
            raise TrainingError(
                Reason.TOO_FEW_ROWS,
                f"class {str(scarce[0])!r} has a single row; a stratified split needs at least 2"
                " rows of every class",
            )
    else:
        needed = 2
    if held_out < needed or training < needed:
        raise TrainingError(
            Reason.TOO_FEW_ROWS,
            f"too few rows for the split: {rows} rows with test_size {test_size} leave"
            f" {training} training and {held_out} held-out rows; each part needs at least {needed}",
        )
    parts = train_test_split(
        table.x,
        table.y,
        test_size=held_out,
        random_state=seed,
        stratify=table.y if task == "classification" else None,
    )
    x_train, x_test, y_train, y_test = parts
    if cv_folds:
        _check_folds(y_train, task, cv_folds)
    return x_train, x_test, y_train, y_test


def _check_folds(y_train: npt.NDArray[Any], task: Task, folds: int) -> None:
    if task == "classification":
        classes, counts = np.unique(y_train, return_counts=True)
        smallest = int(counts.argmin())
        if counts[smallest] < folds:
            raise TrainingError(
                Reason.TOO_FEW_ROWS,
                f"too few rows for {folds}-fold cross-validation: class {str(classes[smallest])!r}"
                f" has {counts[smallest]} training rows, fewer than {folds}",
            )
    elif len(y_train) < folds:
        raise TrainingError(
            Reason.TOO_FEW_ROWS,
            f"too few rows for {folds}-fold cross-validation: {len(y_train)} training rows",
        )


def held_out_metrics(
    pipeline: Pipeline, table: FeatureTable, x_test: Any, y_test: npt.NDArray[Any], task: Task
) -> dict[str, float]:
    """Metrics of the fitted pipeline on the held-out rows."""
    features = model_input(table, x_test)
    predicted = pipeline.predict(features)
    if task == "regression":
        return scores(task, y_test, predicted)
    return scores(task, y_test, predicted, pipeline.predict_proba(features), pipeline.classes_)


def scores(
    task: Task,
    y_true: npt.NDArray[Any],
    predicted: npt.NDArray[Any],
    probabilities: npt.NDArray[Any] | None = None,
    classes: npt.NDArray[Any] | None = None,
) -> dict[str, float]:
    """The held-out metrics of any model's predictions (the validator scores ONNX models with it).

    Classification needs `probabilities` (one column per entry of `classes`).
    """
    if task == "regression":
        return {
            "rmse": float(metrics.root_mean_squared_error(y_true, predicted)),
            "mae": float(metrics.mean_absolute_error(y_true, predicted)),
            "r2": float(metrics.r2_score(y_true, predicted)),
        }
    if probabilities is None or classes is None:
        raise ValueError("classification metrics need the probabilities and the classes")
    result = {
        "accuracy": float(metrics.accuracy_score(y_true, predicted)),
        "balanced_accuracy": float(metrics.balanced_accuracy_score(y_true, predicted)),
        "f1_macro": float(metrics.f1_score(y_true, predicted, average="macro")),
        "log_loss": float(metrics.log_loss(y_true, probabilities, labels=classes)),
    }
    try:
        if len(classes) == 2:
            auc = metrics.roc_auc_score(y_true == classes[1], probabilities[:, 1])
        else:
            auc = metrics.roc_auc_score(
                y_true, probabilities, multi_class="ovr", average="macro", labels=classes
            )
        result["roc_auc"] = float(auc)
    except ValueError as error:
        # A class absent from the held-out rows leaves ROC AUC undefined; the rest still stands.
        _log.warning("ROC AUC left out: %s", error)
    return dict(sorted(result.items()))


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
