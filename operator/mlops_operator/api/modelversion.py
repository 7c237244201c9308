"""ModelVersion (``mv``): one trained model, immutable, with its metrics and full lineage.

A ModelVersion is a record, not a workload: its spec says what the model is
(artifact, checksum, signature, metrics) and how it was made (dataset digest,
estimator and parameters, seed, image, code version, TrainingJob). The API
server refuses any change of the spec, so what was validated and promoted is
what serves, and any result can be traced and re-created. The operator
validates the artifact and evaluates the gates; the status holds the evidence.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field

from mlops_operator.api.estimators import EstimatorName, Task
from mlops_operator.api.fields import (
    ColumnName,
    Image,
    MetricName,
    ModelName,
    ObjectName,
    Sha256,
    StorageUri,
)
from mlops_operator.api.gates import Gates
from mlops_operator.api.model import CamelModel, Rule, field_rules
from mlops_operator.api.pods import PodOverrides
from mlops_operator.api.resource import CustomResource, PrinterColumn, ResourceStatus
from mlops_operator.api.trainingjob import Preprocessing

__all__ = [
    "Approval",
    "Artifact",
    "DatasetLineage",
    "FeatureKind",
    "FeatureSummary",
    "GateResult",
    "Lineage",
    "ModelFormat",
    "ModelVersion",
    "ModelVersionPhase",
    "ModelVersionSpec",
    "ModelVersionStatus",
    "PrimaryMetric",
    "Review",
    "ReviewAction",
    "SignatureSummary",
    "SourceLineage",
    "TensorDtype",
    "TensorSummary",
]


class ModelFormat(StrEnum):
    """Serialization of the artifact."""

    ONNX = "onnx"


class Artifact(CamelModel):
    """The model file, addressed by content."""

    uri: StorageUri = Field(
        description="Where the artifact directory (`model.onnx` + `model-card.json`) lives."
    )
    sha256: Sha256 = Field(description="SHA-256 of `model.onnx`; checked before serving.")
    size_bytes: int = Field(ge=1, description="Size of `model.onnx` in bytes.")
    format: ModelFormat = Field(default=ModelFormat.ONNX, description="Serialization format.")
    opset: int = Field(ge=1, le=30, description="ONNX opset of the default domain.")


class TensorDtype(StrEnum):
    """Element type of an ONNX input or output."""

    FLOAT32 = "float32"
    FLOAT64 = "float64"
    INT64 = "int64"
    STRING = "string"


class TensorSummary(CamelModel):
    """One ONNX input or output."""

    name: str = Field(min_length=1, max_length=256, description="Tensor name in the graph.")
    dtype: TensorDtype = Field(description="Element type.")
    shape: list[Annotated[int, Field(ge=-1)]] = Field(
        default_factory=list,
        max_length=8,
        description="Dimensions; `-1` marks a dynamic (batch) dimension.",
    )


class FeatureKind(StrEnum):
    """How a feature is treated."""

    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


class FeatureSummary(CamelModel):
    """One input column."""

    name: ColumnName = Field(description="Column name as in the training data.")
    kind: FeatureKind = Field(description="Numeric or categorical.")


class SignatureSummary(CamelModel):
    """What the model takes and returns (the full signature is in the model card)."""

    task: Task = Field(description="Classification or regression.")
    features: list[FeatureSummary] = Field(
        max_length=1000,
        description="Input columns in order.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    classes: list[Annotated[str, Field(max_length=256)]] | None = Field(
        default=None,
        max_length=1000,
        description="Class labels in output order (classification).",
    )
    inputs: list[TensorSummary] = Field(
        default_factory=list,
        max_length=64,
        description="ONNX graph inputs.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    outputs: list[TensorSummary] = Field(
        default_factory=list,
        max_length=16,
        description="ONNX graph outputs.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )


class SourceLineage(CamelModel):
    """One source of a combined training table, with its own data version."""

    uri: str = Field(
        min_length=1, max_length=2048, description="The source as the recipe named it."
    )
    sha256: Sha256 = Field(
        description="SHA-256 of the source's canonical table; its snapshot in the artifact"
        " store is `datasets/<sha256>/`."
    )
    rows: int = Field(ge=0, description="Rows in the source.")
    sample: float = Field(default=1.0, gt=0.0, le=1.0, description="Share of its rows used.")
    used_rows: int = Field(ge=0, description="Rows taken into the training table.")


class DatasetLineage(CamelModel):
    """The exact data the model was trained on."""

    uri: str = Field(
        min_length=1,
        max_length=2048,
        description="Dataset URI as given (the sources' joined by ` + ` when several).",
    )
    sha256: Sha256 = Field(description="SHA-256 of the snapshot: the data version.")
    rows: int = Field(ge=0, description="Rows in the snapshot.")
    columns: int = Field(ge=0, description="Columns in the snapshot, target included.")
    format: str | None = Field(
        default=None,
        max_length=16,
        description="The file encoding the recipe asked for (`csv`, `parquet`), when not `auto`.",
    )
    sources: list[SourceLineage] | None = Field(
        default=None,
        max_length=8,
        description="With `dataset.sources` (or a sampled source): every source, in order.",
    )


class Lineage(CamelModel):
    """Everything needed to trace and re-create the model."""

    dataset: DatasetLineage = Field(description="The training data.")
    target: ColumnName = Field(description="The column predicted.")
    estimator: EstimatorName = Field(description="The scikit-learn estimator class.")
    params: dict[str, Any] = Field(
        default_factory=dict, description="The estimator's constructor arguments as given."
    )
    features: list[ColumnName] | None = Field(
        default=None,
        max_length=1000,
        description="Feature columns as the recipe gave them; absent: every column but the target.",
    )
    categorical_features: list[ColumnName] | None = Field(
        default=None,
        max_length=1000,
        description="Columns one-hot encoded as the recipe gave them; absent: the non-numeric ones.",
    )
    seed: int = Field(ge=0, description="Seed of the split and the estimator.")
    test_size: float = Field(gt=0.0, lt=1.0, description="Share of rows held out.")
    cv_folds: int | None = Field(
        default=None, ge=2, le=20, description="Folds of the cross-validation, when it ran."
    )
    preprocessing: Preprocessing | None = Field(
        default=None, description="The preprocessing fitted with the estimator, as given."
    )
    image: Image | None = Field(default=None, description="Trainer image (ideally by digest).")
    code_version: str = Field(
        min_length=1,
        max_length=128,
        description="The trainer's code: the package version plus the commit it was built from"
        " where known, e.g. `0.1.0+g0123456789ab` (`.dirty` when the checkout differed).",
    )
    training_job: ObjectName | None = Field(
        default=None, description="The TrainingJob that produced it; absent when imported."
    )
    parent_version: ObjectName | None = Field(
        default=None,
        description="The ModelVersion this one was retrained to replace (the champion then).",
    )
    libraries: dict[str, str] = Field(
        default_factory=dict,
        max_length=64,
        description="Versions of the libraries that trained and exported it, e.g."
        " `{scikit-learn: 1.7.2}`.",
    )


class PrimaryMetric(CamelModel):
    """The headline metric, shown by `kubectl get mv` and compared with the champion."""

    name: MetricName = Field(description="Key in `metrics`, e.g. `accuracy` or `r2`.")
    value: float = Field(description="Its value; equal to `metrics[name]`.")


class ModelVersionSpec(CamelModel):
    """What the model is and how it was made; immutable."""

    cel_rules = (
        Rule(
            "self.primaryMetric.name in self.metrics"
            " && self.metrics[self.primaryMetric.name] == self.primaryMetric.value",
            "`primaryMetric` must name a key of `metrics` and carry its value",
            field_path=".primaryMetric",
        ),
        Rule(
            "self.metrics.all(k, k.matches('^[a-z][a-z0-9_]*$'))",
            "`metrics` keys must be lowercase snake_case names such as `f1_macro`",
            field_path=".metrics",
        ),
    )

    model_name: ModelName = Field(description="Name of the model this is a version of.")
    version: int = Field(ge=1, description="Version number, increasing per model.")
    artifact: Artifact = Field(description="The ONNX file and its checksum.")
    signature: SignatureSummary | None = Field(
        default=None, description="Inputs and outputs; absent only for imported models."
    )
    metrics: dict[str, float] = Field(
        max_length=64,
        description="Offline metrics on the held-out split as the trainer reported them, e.g."
        " `{accuracy: 0.97, f1_macro: 0.96}`; gates judge the validator's own measurement"
        " (`status.measuredMetrics`), not these.",
    )
    primary_metric: PrimaryMetric = Field(description="The headline metric.")
    lineage: Lineage | None = Field(
        default=None, description="How it was made; absent only for imported models."
    )
    target_deployment: ObjectName | None = Field(
        default=None, description="ModelDeployment this version is a candidate for."
    )
    gates: Gates | None = Field(
        default=None, description="Checks this version must pass before any deployment uses it."
    )
    validator_pod_overrides: PodOverrides | None = Field(
        default=None,
        description="Changes to the validation Job's pod, merged over the operator's defaults"
        " (a TrainingJob copies its `validatorPodOverrides` here).",
    )


class ModelVersionPhase(StrEnum):
    """Where the version is in validation."""

    PENDING = "Pending"
    VALIDATING = "Validating"
    VALIDATED = "Validated"
    REJECTED = "Rejected"
    AWAITING_APPROVAL = "AwaitingApproval"


class GateResult(CamelModel):
    """The outcome of one check, with its evidence."""

    gate: str = Field(
        min_length=1,
        max_length=256,
        description="Which check: `accuracy >= 0.9`, `compareToChampion`, `checksum`, `parity` …",
    )
    metric: str | None = Field(default=None, max_length=63, description="Metric checked.")
    value: float | None = Field(default=None, description="The candidate's value.")
    threshold: float | None = Field(default=None, description="The value it had to reach.")
    champion_value: float | None = Field(
        default=None, description="The champion's value (for `compareToChampion`)."
    )
    champion: ObjectName | None = Field(default=None, description="The champion compared with.")
    passed: bool = Field(description="Whether the check passed.")
    message: str = Field(default="", max_length=1024, description="Explanation for humans.")


class Approval(CamelModel):
    """Who let the version through `requireApproval`, and when."""

    by: str = Field(
        min_length=1,
        max_length=256,
        description="The approver's user name, as the API server authenticated it.",
    )
    at: datetime = Field(description="When it was approved.")


class ReviewAction(StrEnum):
    """What a person decided about a version."""

    APPROVE = "Approve"
    REJECT = "Reject"
    REVOKE = "Revoke"


class Review(CamelModel):
    """One decision of a person: an approval, a rejection, or an approval withdrawn."""

    action: ReviewAction = Field(description="`Approve`, `Reject` or `Revoke` (an approval).")
    by: str = Field(
        min_length=1,
        max_length=256,
        description="The user name the API server authenticated for the request that made it"
        " (the admission policy admits no other name).",
    )
    at: datetime = Field(description="When the operator recorded it.")


class ModelVersionStatus(ResourceStatus):
    """Validation outcome; conditions `Validated` and `Ready` (usable by a deployment)."""

    phase: ModelVersionPhase = Field(
        default=ModelVersionPhase.PENDING, description="Summary phase."
    )
    gate_results: list[GateResult] = Field(
        default_factory=list, max_length=64, description="Every check run, with its evidence."
    )
    approval: Approval | None = Field(
        default=None, description="Set while approved; cleared when the approval is revoked."
    )
    reviews: list[Review] = Field(
        default_factory=list,
        max_length=32,
        description="Approvals, rejections and revocations by people, oldest first (the audit"
        " log keeps all of them).",
    )
    measured_metrics: dict[str, float] = Field(
        default_factory=dict,
        max_length=64,
        description="Metrics the validation Job measured itself on the held-out rows; threshold"
        " gates judge these, never the self-reported `spec.metrics`.",
    )
    validated_at: datetime | None = Field(default=None, description="When validation finished.")


class ModelVersion(
    CustomResource,
    kind="ModelVersion",
    plural="modelversions",
    short_names=("mv",),
    printer_columns=(
        PrinterColumn("Model", "string", ".spec.modelName", "Name of the model."),
        PrinterColumn("Version", "integer", ".spec.version", "Version number."),
        PrinterColumn("Metric", "string", ".spec.primaryMetric.name", "The headline metric."),
        PrinterColumn("Value", "number", ".spec.primaryMetric.value", "Its held-out value."),
        PrinterColumn("Phase", "string", ".status.phase", "Validation phase."),
        PrinterColumn(
            "Dataset", "string", ".spec.lineage.dataset.uri", "Training data.", priority=1
        ),
        PrinterColumn("Age", "date", ".metadata.creationTimestamp", "Time since creation."),
    ),
):
    """A ModelVersion is one trained model: an immutable record of its ONNX artifact,
    checksum, signature, metrics and lineage, validated against its gates."""

    spec: ModelVersionSpec = Field(
        description="What the model is and how it was made; immutable once created.",
        json_schema_extra=field_rules(
            Rule("self == oldSelf", "`spec` is immutable: create a new ModelVersion instead")
        ),
    )
    status: ModelVersionStatus | None = Field(
        default=None, description="Validation outcome, written by the operator."
    )
