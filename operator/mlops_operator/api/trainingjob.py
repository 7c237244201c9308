"""TrainingJob (``tj``): fit a scikit-learn model on a dataset and produce a ModelVersion.

The operator runs the trainer in a ``batch/v1`` Job; on success it creates a
ModelVersion with the artifact, the metrics and the lineage. The spec is a
recipe, so it is frozen once created (except `suspend` and
`ttlSecondsAfterFinished`): the status and the ModelVersion always describe the
spec you see. A DriftPolicy embeds the same recipe as its retrain template.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from mlops_operator.api.estimators import (
    CLASSIFIERS,
    REGRESSORS,
    SCALE_INVARIANT,
    EstimatorName,
    Task,
)
from mlops_operator.api.fields import (
    ColumnName,
    Duration,
    Image,
    ModelName,
    ObjectName,
    ResourceRequirements,
    Sha256,
)
from mlops_operator.api.gates import Gates
from mlops_operator.api.model import CamelModel, Rule, field_rules, frozen_except
from mlops_operator.api.pods import PodOverrides
from mlops_operator.api.resource import CustomResource, PrinterColumn, ResourceStatus

__all__ = [
    "CLASSIFIERS",
    "MISSING_CATEGORY",
    "REGRESSORS",
    "CategoricalImpute",
    "Dataset",
    "DatasetFormat",
    "DatasetSource",
    "Estimator",
    "EstimatorName",
    "Imputation",
    "NumericImpute",
    "PayloadLogSource",
    "Preprocessing",
    "PvcSource",
    "Task",
    "TrainingJob",
    "TrainingJobPhase",
    "TrainingJobSpec",
    "TrainingJobStatus",
    "TrainingJobTemplate",
]


def _cel_names(names: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{name}'" for name in names) + "]"


class DatasetFormat(StrEnum):
    """How the dataset's file is encoded."""

    AUTO = "auto"
    CSV = "csv"
    PARQUET = "parquet"


class PvcSource(CamelModel):
    """A file on a PersistentVolumeClaim in the job's namespace."""

    cel_rules = (
        Rule(
            "!self.path.matches('(^|/)[.][.](/|$)')",
            "`path` must not contain `..`",
            field_path=".path",
        ),
    )

    claim_name: ObjectName = Field(description="Name of the PersistentVolumeClaim.")
    path: str = Field(
        min_length=1,
        max_length=1024,
        pattern=r"^[^/\s]\S*$",
        description="Path of the file relative to the claim's root, e.g. `data/iris.csv`.",
    )


class PayloadLogSource(CamelModel):
    """Requests a ModelDeployment logged, joined with their labelled feedback."""

    deployment: ObjectName = Field(
        description="ModelDeployment whose payload log to read (`spec.payloadLogging` on)."
    )
    window: Duration = Field(
        default="168h", description="How far back to read, e.g. `24h`; default one week."
    )
    min_rows: int = Field(
        default=100,
        ge=1,
        le=10_000_000,
        description="Fail (reason `DatasetUnavailable`) with fewer labelled rows than this.",
    )


_URI_PATTERN = r"^(sklearn|file|s3|gs|https?)://\S+$"
_URI_DESCRIPTION = (
    "A dataset URI: `sklearn://iris` (a scikit-learn toy dataset), `file:///data/train.csv`,"
    " `s3://bucket/key.parquet`, `gs://…` or `https://…`."
)
_FORMAT_DESCRIPTION = (
    "File encoding of `uri` or `pvc`: `csv` (optionally .gz/.bz2/.zst compressed) or"
    " `parquet`; `auto` decides from the file name's extension."
)


class _DataLocation(CamelModel):
    """The three ways to name data, shared by a dataset and each of its sources."""

    uri: str | None = Field(
        default=None, max_length=2048, pattern=_URI_PATTERN, description=_URI_DESCRIPTION
    )
    pvc: PvcSource | None = Field(default=None, description="A file on a PersistentVolumeClaim.")
    from_payload_log: PayloadLogSource | None = Field(
        default=None,
        description="The labelled requests a ModelDeployment logged (retraining on live data).",
    )
    format: DatasetFormat = Field(default=DatasetFormat.AUTO, description=_FORMAT_DESCRIPTION)


class DatasetSource(_DataLocation):
    """One source of a combined dataset: exactly one of `uri`, `pvc` or `fromPayloadLog`."""

    cel_rules = (
        Rule(
            "[has(self.uri), has(self.pvc), has(self.fromPayloadLog)].exists_one(x, x)",
            "exactly one of `uri`, `pvc` or `fromPayloadLog` must be set",
        ),
    )

    sample: float = Field(
        default=1.0,
        gt=0.0,
        le=1.0,
        description="Share of this source's rows used, drawn with the recipe's `seed` (so a"
        " re-run draws the same rows); e.g. `0.5` keeps half of a large original dataset.",
    )


class Dataset(_DataLocation):
    """Where the training data comes from: exactly one of `uri`, `pvc`, `fromPayloadLog` or
    `sources` (several combined)."""

    cel_rules = (
        Rule(
            "[has(self.uri), has(self.pvc), has(self.fromPayloadLog), has(self.sources)]"
            ".exists_one(x, x)",
            "exactly one of `uri`, `pvc`, `fromPayloadLog` or `sources` must be set",
        ),
        Rule(
            "!has(self.credentialsSecret) || has(self.uri) || has(self.sources)",
            "`credentialsSecret` must only be set with `uri` or `sources`",
            field_path=".credentialsSecret",
        ),
        Rule(
            "!has(self.sources) || self.format == 'auto'",
            "`format` is set per source with `sources`",
            field_path=".format",
            reason="FieldValueForbidden",
        ),
    )

    sources: list[DatasetSource] | None = Field(
        default=None,
        min_length=2,
        max_length=8,
        description="Several sources whose rows are combined (same columns), e.g. the original"
        " dataset plus a ModelDeployment's logged window, each optionally sampled; the lineage"
        " records each source with its own sha256.",
    )
    credentials_secret: ObjectName | None = Field(
        default=None,
        description="Secret whose keys become the trainer's environment (e.g."
        " `AWS_ACCESS_KEY_ID`), for `s3://`, `gs://` or `https://` URIs.",
    )


class Estimator(CamelModel):
    """The scikit-learn estimator and its hyperparameters."""

    name: EstimatorName = Field(
        description="Estimator class; must match `task` (a classifier for classification)."
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Constructor arguments, e.g. `{C: 1.0, max_iter: 200}`; unknown ones fail"
        " the job with scikit-learn's message.",
    )


class NumericImpute(StrEnum):
    """How missing numeric values are filled."""

    MEAN = "mean"
    MEDIAN = "median"
    MOST_FREQUENT = "most_frequent"


class CategoricalImpute(StrEnum):
    """How missing categorical values are filled."""

    MOST_FREQUENT = "most_frequent"
    CONSTANT = "constant"


MISSING_CATEGORY = "__missing__"
"""The category `impute.categorical: constant` fills in."""


class Imputation(CamelModel):
    """Missing-value strategies, fitted on the training split and exported into the ONNX graph.

    The served model then fills a missing value (JSON ``null``) the same way.
    """

    numeric: NumericImpute = Field(
        default=NumericImpute.MEDIAN,
        description="Strategy for numeric columns: the training split's `median`, `mean` or"
        " `most_frequent` value.",
    )
    categorical: CategoricalImpute = Field(
        default=CategoricalImpute.MOST_FREQUENT,
        description="Strategy for categorical columns: the training split's most frequent"
        f" category, or `constant`, which fills `{MISSING_CATEGORY}` (a category of its own).",
    )


class Preprocessing(CamelModel):
    """Feature preprocessing fitted with the estimator and exported with it."""

    scale_numeric: bool | None = Field(
        default=None,
        description="Standardize numeric features (zero mean, unit variance): `true` always,"
        " `false` never; unset: only for estimators whose results depend on scale (linear"
        " models, kernels, distances, networks). `true` is refused with a tree ensemble or"
        " naive Bayes, which scaling cannot change.",
    )
    impute: Imputation = Field(
        default=Imputation(),
        description="Fill missing values.",
    )


class _TrainingRecipe(CamelModel):
    """The fields a TrainingJob spec and a DriftPolicy's retrain template share."""

    cel_rules = (
        Rule(
            f"self.task == 'classification' ? self.estimator.name in {_cel_names(CLASSIFIERS)}"
            f" : self.estimator.name in {_cel_names(REGRESSORS)}",
            "`estimator.name` must be a classifier when `task` is classification"
            " and a regressor when `task` is regression",
            field_path=".estimator.name",
        ),
        Rule(
            "!has(self.preprocessing) || !has(self.preprocessing.scaleNumeric)"
            " || !self.preprocessing.scaleNumeric"
            f" || !(self.estimator.name in {_cel_names(SCALE_INVARIANT)})",
            "`preprocessing.scaleNumeric` must not be true for a tree ensemble or naive Bayes:"
            " scaling cannot change them; leave it unset",
            field_path=".preprocessing.scaleNumeric",
        ),
        Rule(
            "!has(self.resources) || !has(self.podOverrides) || !has(self.podOverrides.resources)",
            "`resources` and `podOverrides.resources` must not both be set",
            field_path=".podOverrides.resources",
        ),
        Rule(
            "!has(self.features) || !(self.target in self.features)",
            "`features` must not contain the `target` column",
            field_path=".features",
        ),
        Rule(
            "!has(self.features) || !has(self.categoricalFeatures)"
            " || self.categoricalFeatures.all(c, c in self.features)",
            "`categoricalFeatures` must be a subset of `features`",
            field_path=".categoricalFeatures",
        ),
    )

    model_name: ModelName = Field(
        description="Name of the model; ModelVersions are named `<modelName>-v<version>`."
    )
    target: ColumnName = Field(description="The column to predict.")
    features: list[ColumnName] | None = Field(
        default=None,
        max_length=1000,
        description="Columns to train on, in order; default: every column but `target`.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    categorical_features: list[ColumnName] | None = Field(
        default=None,
        max_length=1000,
        description="Columns to one-hot encode; default: the non-numeric columns.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    task: Task = Field(default=Task.CLASSIFICATION, description="What the model predicts.")
    estimator: Estimator = Field(description="The scikit-learn estimator and its parameters.")
    seed: int = Field(
        default=42,
        ge=0,
        le=2**32 - 1,
        description="Seed of the train/test split and of the estimator, for reproducibility.",
    )
    test_size: float = Field(
        default=0.2,
        gt=0.0,
        lt=1.0,
        description="Share of rows held out for evaluation (stratified for classification).",
    )
    cv_folds: int | None = Field(
        default=None,
        ge=2,
        le=20,
        description="Also report k-fold cross-validated metrics on the training part.",
    )
    preprocessing: Preprocessing = Field(
        default=Preprocessing(),
        description="Preprocessing fitted and exported with the estimator.",
    )
    resources: ResourceRequirements | None = Field(
        default=None, description="Compute resources of the trainer pod."
    )
    pod_overrides: PodOverrides | None = Field(
        default=None,
        description="Changes to the trainer pod (placement, service account, pull secrets,"
        " resources, env, volumes), merged over the operator's defaults.",
    )
    validator_pod_overrides: PodOverrides | None = Field(
        default=None,
        description="Changes to the pod that validates the produced ModelVersion (copied into"
        " its `validatorPodOverrides`).",
    )
    active_deadline_seconds: int | None = Field(
        default=None,
        ge=1,
        le=7 * 24 * 3600,
        description="Fail the job (reason `DeadlineExceeded`) when it runs longer than this.",
    )
    backoff_limit: int = Field(
        default=1,
        ge=0,
        le=10,
        description="Retries of the trainer pod before the job fails; training errors are"
        " usually deterministic, so the default is one retry.",
    )
    ttl_seconds_after_finished: int | None = Field(
        default=None,
        ge=0,
        description="Delete the trainer Job and its pods this long after the Job finished (the"
        " TTL is given to the Job once its outcome is recorded, so it never goes unread); the"
        " TrainingJob, its status and its ModelVersion stay. Editable, also once finished: the"
        " kept Job follows. Default: the operator's setting (one hour).",
    )
    image: Image | None = Field(
        default=None, description="Trainer image; default: the operator's configured image."
    )
    suspend: bool = Field(
        default=False,
        description="Hold the job (or stop its pod); set to false to start. Works with Kueue.",
    )
    target_deployment: ObjectName | None = Field(
        default=None,
        description="ModelDeployment the produced version is a candidate for; recorded in the"
        " ModelVersion so its gates compare with that deployment's champion.",
    )
    gates: Gates | None = Field(
        default=None, description="Gates copied into the produced ModelVersion."
    )


class TrainingJobSpec(_TrainingRecipe):
    """Desired state of a TrainingJob."""

    dataset: Dataset = Field(description="Where the training data comes from.")
    parent_version: ObjectName | None = Field(
        default=None,
        description="The ModelVersion this training retrains, recorded as the produced version's"
        " `lineage.parentVersion`; a DriftPolicy sets it to the champion that served when its"
        " trigger fired.",
    )


class TrainingJobTemplate(_TrainingRecipe):
    """A TrainingJob spec inside a DriftPolicy; `dataset` may be left to `useLoggedData`."""

    dataset: Dataset | None = Field(
        default=None,
        description="Where the training data comes from; must be omitted when the policy's"
        " `retrain.useLoggedData` is true.",
    )


class TrainingJobPhase(StrEnum):
    """Where the TrainingJob is in its life."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class TrainingJobStatus(ResourceStatus):
    """Observed state of a TrainingJob; the condition `Succeeded` summarizes it."""

    phase: TrainingJobPhase = Field(default=TrainingJobPhase.PENDING, description="Summary phase.")
    job_name: ObjectName | None = Field(default=None, description="The batch/v1 Job running it.")
    start_time: datetime | None = Field(default=None, description="When the trainer pod started.")
    completion_time: datetime | None = Field(
        default=None, description="When the job succeeded or failed."
    )
    model_version: ObjectName | None = Field(
        default=None, description="The ModelVersion produced, once succeeded."
    )
    metrics: dict[str, float] = Field(
        default_factory=dict,
        max_length=64,
        description="Held-out metrics of the trained model, e.g. `{accuracy: 0.97}`.",
    )
    dataset_sha256: Sha256 | None = Field(
        default=None, description="SHA-256 of the dataset snapshot trained on (its data version)."
    )
    message: str | None = Field(
        default=None, max_length=4096, description="Human-readable detail of the phase."
    )


class TrainingJob(
    CustomResource,
    kind="TrainingJob",
    plural="trainingjobs",
    short_names=("tj",),
    printer_columns=(
        PrinterColumn("Model", "string", ".spec.modelName", "Name of the model trained."),
        PrinterColumn("Phase", "string", ".status.phase", "Where the job is in its life."),
        PrinterColumn("Version", "string", ".status.modelVersion", "The ModelVersion produced."),
        PrinterColumn(
            "Estimator", "string", ".spec.estimator.name", "The estimator class.", priority=1
        ),
        PrinterColumn("Age", "date", ".metadata.creationTimestamp", "Time since creation."),
    ),
):
    """A TrainingJob fits a scikit-learn model on a dataset, exports it to ONNX and records
    the result as an immutable ModelVersion with metrics and lineage."""

    spec: TrainingJobSpec = Field(
        description="The training recipe; frozen once created except `suspend` and"
        " `ttlSecondsAfterFinished`.",
        json_schema_extra=field_rules(
            frozen_except(
                TrainingJobSpec,
                "suspend",
                "ttlSecondsAfterFinished",
                message="`spec` is immutable except `suspend` and `ttlSecondsAfterFinished`:"
                " create a new TrainingJob instead",
            )
        ),
    )
    status: TrainingJobStatus | None = Field(
        default=None, description="Observed state, written by the operator."
    )
