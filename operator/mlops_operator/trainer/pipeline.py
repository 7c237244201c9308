"""The scikit-learn pipeline: preprocessing that ONNX can carry, then the estimator.

Numeric-only data is fitted as one float matrix, which exports as a single
``input`` tensor of shape [None, n_features]. With categorical columns the
pipeline is a ColumnTransformer over named columns (imputation and scaling of
the numeric ones, one-hot encoding of the others, unseen categories ignored),
which skl2onnx exports with one [None, 1] input per column.
"""

from __future__ import annotations

from typing import Any, Literal

from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlops_operator.trainer.features import FeatureTable

__all__ = ["build_pipeline", "model_input"]


def build_pipeline(
    estimator: BaseEstimator,
    table: FeatureTable,
    *,
    scale: bool,
    imputation: Literal["median", "mean", "none"],
) -> Pipeline:
    """An unfitted pipeline for ``table``'s features ending in ``estimator``."""
    numeric_steps: list[tuple[str, Any]] = []
    if imputation != "none":
        numeric_steps.append(("impute", SimpleImputer(strategy=imputation)))
    if scale:
        numeric_steps.append(("scale", StandardScaler()))
    if not table.categorical:
        return Pipeline([*numeric_steps, ("estimator", estimator)])
    transformers: list[tuple[str, Any, list[str]]] = []
    if table.numeric:
        numeric = Pipeline(numeric_steps) if numeric_steps else "passthrough"
        transformers.append(("numeric", numeric, table.numeric))
    encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    transformers.append(("categorical", encoder, table.categorical))
    columns = ColumnTransformer(transformers, sparse_threshold=0.0)
    return Pipeline([("columns", columns), ("estimator", estimator)])


def model_input(table: FeatureTable, x: Any) -> Any:
    """What the pipeline is fitted and evaluated on: a float matrix, or the named columns."""
    return x if table.categorical else x.to_numpy(dtype="float64")
