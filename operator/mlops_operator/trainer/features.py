"""From a canonical table to the features and the target, with every input check.

Numeric features must hold numbers (text there is an error, not a guess:
declare the column categorical); categorical features become text, a missing
category being the empty string (`MISSING_TEXT`, which the pipeline's imputer
fills). Without a list of categorical features, the non-numeric columns are the
categorical ones. The target must be usable for the task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas.api import types as ptypes

from mlops_operator.modelcard import Task
from mlops_operator.trainer.errors import Reason, TrainingError

__all__ = ["MISSING_TEXT", "FeatureTable", "prepare"]

MISSING_TEXT = ""
"""How a missing categorical value reaches the model (JSON has no missing string)."""

_LISTED_COLUMNS = 20


@dataclass(frozen=True)
class FeatureTable:
    """Features in order (numeric as float64, categorical as text) and the target."""

    x: pd.DataFrame
    y: npt.NDArray[Any]
    numeric: list[str]
    categorical: list[str]

    @property
    def has_missing(self) -> bool:
        """Whether any numeric feature has a missing value."""
        return bool(self.x[self.numeric].isna().to_numpy().any())


def prepare(
    frame: pd.DataFrame,
    *,
    target: str,
    features: Sequence[str] | None,
    categorical: Sequence[str] | None,
    task: Task,
    imputation: bool,
) -> FeatureTable:
    """Select and check the features and the target of a canonical ``frame``.

    ``categorical`` None: the features that do not hold numbers.
    """
    _require_columns(frame, [target], "target column")
    names = list(features) if features is not None else [c for c in frame.columns if c != target]
    if not names:
        raise TrainingError(Reason.INVALID_DATASET, f"the dataset has no column besides {target!r}")
    _require_columns(frame, names, "feature column")
    if categorical is None:
        categorical = [name for name in names if not ptypes.is_numeric_dtype(frame[name])]
    _require_columns(frame, list(categorical), "categorical column")
    columns: dict[str, pd.Series] = {}
    for name in names:
        if name in categorical:
            columns[name] = (
                frame[name].map(lambda v: MISSING_TEXT if pd.isna(v) else str(v)).astype(object)
            )
        else:
            columns[name] = _numeric(frame[name], name, imputation=imputation)
    return FeatureTable(
        x=pd.DataFrame(columns),
        y=_target(frame[target], target, task),
        numeric=[n for n in names if n not in categorical],
        categorical=[n for n in names if n in categorical],
    )


def _require_columns(frame: pd.DataFrame, names: Sequence[str], what: str) -> None:
    missing = [name for name in names if name not in frame.columns]
    if missing:
        available = list(frame.columns)
        listed = ", ".join(available[:_LISTED_COLUMNS])
        more = (
            f" and {len(available) - _LISTED_COLUMNS} more"
            if len(available) > _LISTED_COLUMNS
            else ""
        )
        plural = "s" if len(missing) > 1 else ""
        raise TrainingError(
            Reason.INVALID_DATASET,
            f"{what}{plural} {', '.join(map(repr, missing))} not in the dataset;"
            f" its columns are {listed}{more}",
        )


def _numeric(column: pd.Series, name: str, *, imputation: bool) -> pd.Series:
    if column.dtype == object:
        not_numbers = column[pd.to_numeric(column, errors="coerce").isna() & column.notna()]
        example = not_numbers.iloc[0] if len(not_numbers) else None
        raise TrainingError(
            Reason.INVALID_DATASET,
            f"column {name!r} holds text (for example {example!r}) where numbers are needed;"
            " list it as a categorical column or fix the data",
        )
    values = column.astype("float64")
    missing = int(values.isna().sum())
    if np.isinf(values.to_numpy()).any():
        raise TrainingError(
            Reason.INVALID_DATASET,
            f"column {name!r} holds infinite values; expected finite numbers",
        )
    if missing == len(values):
        raise TrainingError(Reason.INVALID_DATASET, f"column {name!r} has no values at all")
    if missing and not imputation:
        raise TrainingError(
            Reason.INVALID_DATASET,
            f"column {name!r} has {missing} missing values and imputation is off;"
            " turn imputation on or fill them",
        )
    return values


def _target(column: pd.Series, name: str, task: Task) -> npt.NDArray[Any]:
    missing = int(column.isna().sum()) if column.dtype != object else sum(v is None for v in column)
    if missing:
        raise TrainingError(
            Reason.INVALID_DATASET,
            f"target column {name!r} has {missing} missing values; every row needs a target",
        )
    if task == "regression":
        if column.dtype == object:
            raise TrainingError(
                Reason.INVALID_DATASET,
                f"target column {name!r} holds text (for example {column.iloc[0]!r});"
                " a regression target must be numeric",
            )
        numbers: npt.NDArray[np.float64] = column.to_numpy(dtype="float64")
        if np.isinf(numbers).any():
            raise TrainingError(
                Reason.INVALID_DATASET, f"target column {name!r} holds infinite values"
            )
        return numbers
    if column.dtype == np.float64:
        raise TrainingError(
            Reason.INVALID_DATASET,
            f"target column {name!r} holds fractional numbers; a classification target must hold"
            " class labels (integers or text) — use a regressor for a continuous target",
        )
    labels: npt.NDArray[Any] = column.to_numpy()
    if len(np.unique(labels)) < 2:
        raise TrainingError(
            Reason.INVALID_DATASET,
            f"target column {name!r} has a single class; classification needs at least two",
        )
    return labels
