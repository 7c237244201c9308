"""The scikit-learn pipeline: preprocessing that ONNX can carry, then the estimator.

Numeric-only data is fitted as one float matrix, which exports as a single
``input`` tensor of shape [None, n_features]. With categorical columns the
pipeline is a ColumnTransformer over named columns (imputation and scaling of
the numeric ones; imputation of a missing category, then one-hot encoding, of
the others; unseen categories ignored), which skl2onnx exports with one
[None, 1] input per column.
"""

from __future__ import annotations

from typing import Any, Literal

from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlops_operator.api.trainingjob import MISSING_CATEGORY
from mlops_operator.trainer.features import MISSING_TEXT, FeatureTable

__all__ = ["CategoricalImputation", "NumericImputation", "build_pipeline", "model_input"]

NumericImputation = Literal["median", "mean", "most_frequent", "none"]
CategoricalImputation = Literal["most_frequent", "constant"]


def build_pipeline(
    estimator: BaseEstimator,
    table: FeatureTable,
    *,
    scale: bool,
    imputation: NumericImputation,
    categorical_imputation: CategoricalImputation = "most_frequent",
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
    # A missing category reaches the model as MISSING_TEXT (in training and in a request),
    # and the imputer fitted here replaces it inside the exported graph.
    impute = SimpleImputer(
        missing_values=MISSING_TEXT, strategy=categorical_imputation, fill_value=MISSING_CATEGORY
    )
    encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    categorical = Pipeline([("impute", impute), ("encode", encoder)])
    transformers.append(("categorical", categorical, table.categorical))
    columns = ColumnTransformer(transformers, sparse_threshold=0.0)
    return Pipeline([("columns", columns), ("estimator", estimator)])


def model_input(table: FeatureTable, x: Any) -> Any:
    """What the pipeline is fitted and evaluated on: a float matrix, or the named columns."""
    return x if table.categorical else x.to_numpy(dtype="float64")
