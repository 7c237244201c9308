"""The model card: the contract between the trainer, the operator and the server.

The trainer writes ``model-card.json`` beside ``model.onnx``; the operator
copies its summary into the ModelVersion; the inference server reads its
signature to validate requests and its reference distributions to export drift
counters. It is the one description of a trained model, so every consumer
parses it with this model and nothing else.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MODEL_CARD_FILE",
    "MODEL_FILE",
    "Artifact",
    "Calibration",
    "CategoricalReference",
    "Feature",
    "Lineage",
    "ModelCard",
    "NumericReference",
    "Parity",
    "PredictionReference",
    "Signature",
    "SourceRecord",
    "Task",
    "TensorSpec",
]

MODEL_FILE = "model.onnx"
MODEL_CARD_FILE = "model-card.json"

Task = Literal["classification", "regression"]
"""What a model predicts: a class, or a number."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TensorSpec(_Strict):
    """One ONNX input or output."""

    name: str
    dtype: Literal["float32", "float64", "int64", "string"]
    shape: list[int | None] = Field(description="None marks a dynamic (batch) dimension.")


class Feature(_Strict):
    """One input column as the data scientist knows it."""

    name: str
    kind: Literal["numeric", "categorical"]
    input: str = Field(description="The ONNX input that carries this feature.")
    index: int = Field(ge=0, description="Position of the feature within that input's last axis.")


class NumericReference(_Strict):
    """Training distribution of a numeric feature on fixed bins.

    ``edges`` are the inner bin edges (deciles of the training data, deduplicated);
    bin ``i`` holds values ``edges[i-1] < x <= edges[i]`` with ``-inf`` and ``+inf``
    closing the ends, so there are ``len(edges) + 1`` bins and proportions.
    """

    kind: Literal["numeric"] = "numeric"
    edges: list[float]
    proportions: list[float]


class CategoricalReference(_Strict):
    """Training frequencies of a categorical feature; unseen values count as ``__other__``."""

    kind: Literal["categorical"] = "categorical"
    categories: list[str]
    proportions: list[float] = Field(description="One per category, then one for __other__.")


class PredictionReference(_Strict):
    """Distribution of the model's own predictions on the training data."""

    classes: list[str] | None = Field(default=None, description="Classification: class labels.")
    edges: list[float] | None = Field(default=None, description="Regression: inner bin edges.")
    proportions: list[float]


class Calibration(_Strict):
    """How often the predicted class is right, by the model's top probability (classifiers).

    A monotone (isotonic) map fitted on the held-out split: the server turns each
    prediction's top probability into the chance that this row is right, and the mean
    over a window of predictions estimates its accuracy before any label arrives
    (confidence-based performance estimation, CBPE). Between knots the map is linear;
    outside them it is flat.
    """

    probabilities: list[float] = Field(min_length=1, description="Knots, increasing.")
    accuracy: list[float] = Field(min_length=1, description="P(correct) at each knot.")
    rows: int = Field(ge=1, description="Held-out rows it was fitted on.")


class Signature(_Strict):
    """What the model takes and returns."""

    task: Task
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    features: list[Feature]
    classes: list[str] | None = Field(default=None, description="Class labels, in output order.")
    allow_non_finite: bool = Field(
        default=False,
        description=(
            "Whether NaN (a missing value) is accepted in numeric inputs: the model imputes it."
            " Infinities are never valid input."
        ),
    )


class Artifact(_Strict):
    """The ONNX file, addressed by content."""

    file: str = MODEL_FILE
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(ge=1)
    opset: int


class Parity(_Strict):
    """ONNX-vs-scikit-learn agreement on held-out rows, and a sample to re-check it."""

    rows_checked: int
    max_abs_diff: float
    labels_identical: bool
    tolerance: float = Field(
        description=(
            "Classification: the largest allowed probability difference. Regression: the largest"
            " allowed absolute difference of a prediction, in target units."
        )
    )
    sample_inputs: list[list[float | str | None]] = Field(
        description="Held-out rows, features in order; None is a missing numeric value (NaN)."
    )
    sample_outputs: list[str | float] = Field(description="The model's predictions on them.")
    sample_probabilities: list[list[float]] | None = None


class SourceRecord(_Strict):
    """One source of a combined training table, with its own data version."""

    uri: str = Field(description="The source as the recipe named it.")
    sha256: str = Field(description="sha256 of the source's canonical table (all its rows).")
    rows: int = Field(ge=0, description="Rows in the source.")
    sample: float = Field(gt=0, le=1, description="Share of its rows used (drawn with the seed).")
    used_rows: int = Field(ge=0, description="Rows taken into the training table.")
    key: str | None = Field(default=None, description="Its snapshot in the artifact store.")


class Lineage(_Strict):
    """Everything needed to trace and re-create the model."""

    dataset_uri: str
    dataset_sha256: str = Field(description="The data version: sha256 of the canonical content.")
    dataset_rows: int
    dataset_columns: int
    dataset_key: str | None = Field(
        default=None, description="Where the dataset snapshot lives in the artifact store."
    )
    sources: list[SourceRecord] = Field(
        default_factory=list,
        description="With several sources (or a sampled one): each, with its data version.",
    )
    target: str
    categorical: list[str] = Field(default_factory=list, description="Columns one-hot encoded.")
    estimator: str
    params: dict[str, object] = Field(description="Every parameter given to the estimator.")
    seed: int
    test_size: float
    cv_folds: int = Field(default=0, description="0 when no cross-validation ran.")
    scaling: Literal["standard", "none"] = "none"
    imputation: Literal["median", "mean", "most_frequent", "none"] = "none"
    categorical_imputation: Literal["most_frequent", "constant"] | None = Field(
        default=None, description="How a missing category is filled; None: no categorical column."
    )
    image: str | None = None
    code_version: str
    training_job: str | None = None
    libraries: dict[str, str] = Field(default_factory=dict)


class ModelCard(_Strict):
    """The description of one trained model (``model-card.json``)."""

    schema_version: Literal[1] = 1
    model_name: str
    created_at: str = Field(description="RFC 3339 time the training finished.")
    signature: Signature
    metrics: dict[str, float]
    lineage: Lineage
    artifact: Artifact
    parity: Parity
    reference: dict[str, NumericReference | CategoricalReference] = Field(
        description="Per feature name, its training distribution."
    )
    prediction_reference: PredictionReference
    calibration: Calibration | None = Field(
        default=None, description="Classifiers: the confidence calibration CBPE uses."
    )
