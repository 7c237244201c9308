"""The held-out split: which rows train a model and which judge it, from the seed alone.

The trainer splits with it, and the validator splits the dataset snapshot again with
the seed and test size the model card records, so both judge a candidate on the same
rows. That is why it is numpy only: the validator pod never imports scikit-learn.

Classification splits are stratified: each class gives the held-out part its share of
the rows, rounded by largest remainder (ties to the class that sorts first), at least
one row and never all of its rows, so every class is both trained on and judged.
The rows a class gives are a seeded shuffle of its rows; both parts are shuffled once
more, so neither comes grouped by class (the card's parity sample is the first
held-out rows). The generator is numpy's legacy RandomState, whose stream numpy keeps
the same across its versions: the seed alone decides the rows, in any later image.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops_operator.modelcard import Task
from mlops_operator.trainer.errors import Reason, TrainingError
from mlops_operator.trainer.features import FeatureTable

__all__ = ["Split", "held_out_positions", "split"]

Split = tuple[Any, Any, npt.NDArray[Any], npt.NDArray[Any]]


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
    train, test = held_out_positions(
        table.y, held_out, seed=seed, stratified=task == "classification"
    )
    y_train, y_test = table.y[train], table.y[test]
    if cv_folds:
        _check_folds(y_train, task, cv_folds)
    return table.x.iloc[train], table.x.iloc[test], y_train, y_test


def held_out_positions(
    y: npt.NDArray[Any], held_out: int, *, seed: int, stratified: bool
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """The positions of the training rows and of the `held_out` held-out rows of target `y`.

    Stratified, `y` must hold at least two rows of each class and `held_out` must leave
    each part at least one row per class (`split` checks both).
    """
    rng = np.random.RandomState(seed)
    if not stratified:
        order = rng.permutation(len(y))
        return order[held_out:], order[:held_out]
    _, codes, counts = np.unique(y, return_inverse=True, return_counts=True)
    quotas = _quotas(counts, held_out)
    train: list[npt.NDArray[np.intp]] = []
    test: list[npt.NDArray[np.intp]] = []
    for code, quota in enumerate(quotas):
        members = rng.permutation(np.flatnonzero(codes == code))
        test.append(members[:quota])
        train.append(members[quota:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def _quotas(counts: npt.NDArray[np.intp], held_out: int) -> npt.NDArray[np.intp]:
    """Each class's held-out rows: its share of `held_out`, rounded by largest remainder,
    then moved so every class keeps at least one row in each part."""
    # In integers, so that equal remainders are equal and go to the first class (stable sort).
    quotas, remainders = np.divmod(held_out * counts, counts.sum())
    for index in np.argsort(-remainders, kind="stable")[: held_out - int(quotas.sum())]:
        quotas[index] += 1
    quotas = np.clip(quotas, 1, counts - 1).astype(np.intp)
    # Clipping may have moved the total: give or take rows where the class has most room.
    while (excess := int(quotas.sum()) - held_out) != 0:
        room = quotas - 1 if excess > 0 else counts - 1 - quotas
        quotas[int(np.argmax(room))] += -1 if excess > 0 else 1
    return quotas


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
