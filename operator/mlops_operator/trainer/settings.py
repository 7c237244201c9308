"""The trainer's container interface: every setting, read from ``MLOPS_*`` variables.

The TrainingJob controller renders a :class:`TrainerSettings` into the pod's
environment with :meth:`TrainerSettings.to_env`; ``python -m
mlops_operator.trainer`` reads it back; ``mlops train`` maps its flags onto the
same fields. Lists and mappings travel as JSON (``MLOPS_PARAMS='{"C": 0.5}'``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ModelWrapValidatorHandler,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlops_operator.podcontract import ENV_PREFIX, TERMINATION_MESSAGE_PATH, TRAINER_OUTPUT_DIR

__all__ = ["DataFormat", "DataSource", "TrainerSettings", "describe_invalid"]

DataFormat = Literal["auto", "csv", "parquet"]


class DataSource(BaseModel):
    """One source of a combined training table (`TrainerSettings.sources`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    uri: str = Field(min_length=1, description="Where the trainer reads it (as `dataset_uri`).")
    format: DataFormat = Field(default="auto", description="As `dataset_format`.")
    sample: float = Field(
        default=1.0, gt=0, le=1, description="Share of its rows used, drawn with `seed`."
    )
    lineage_uri: str | None = Field(
        default=None,
        description="How the lineage names it (e.g. payloadlog://ns/deployment?window=24h);"
        " default: `uri`.",
    )


class TrainerSettings(BaseSettings):
    """What to train, on what, and where to put the result."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    dataset_uri: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "sklearn://iris|wine|breast_cancer|digits|diabetes, a CSV or Parquet path or"
            " file:// URI, or any fsspec URI (s3://... with s3fs installed). Exactly one of"
            " dataset_uri and sources."
        ),
    )
    dataset_format: DataFormat = Field(
        default="auto",
        description="csv or parquet whatever the file's name says; auto: from its extension.",
    )
    sources: list[DataSource] = Field(
        default_factory=list,
        description="Several sources combined into one table (same columns), each with its own"
        " data version in the lineage; instead of dataset_uri.",
    )
    target: str = Field(min_length=1, description="The column to predict.")
    estimator: str = Field(min_length=1, description="An allow-listed scikit-learn estimator.")
    params: dict[str, JsonValue] = Field(
        default_factory=dict, description="Estimator parameters, checked against the estimator."
    )
    features: list[str] | None = Field(
        default=None, description="Feature columns, in order; default: every column but the target."
    )
    categorical: list[str] | None = Field(
        default=None,
        description="Feature columns holding categories (one-hot encoded); default: the"
        " features that do not hold numbers.",
    )
    test_size: float = Field(default=0.2, gt=0, lt=1, description="Held-out fraction of the rows.")
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="Seed of the split and estimator.")
    cv_folds: int = Field(
        default=0, ge=0, le=50, description="k-fold CV on the training split; 0: none."
    )
    scaling: Literal["auto", "standard", "none"] = Field(
        default="auto",
        description=(
            "Standardize numeric features; auto: only for estimators that depend on scale"
            " (never for trees, whose float32 thresholds would lose parity)."
        ),
    )
    imputation: Literal["auto", "median", "mean", "most_frequent", "none"] = Field(
        default="auto",
        description=(
            "How missing numeric values are filled, inside the model (which then accepts NaN);"
            " auto: the median when the training data has any, else no imputation."
        ),
    )
    categorical_imputation: Literal["most_frequent", "constant"] = Field(
        default="most_frequent",
        description=(
            "How a missing category (an empty string) is filled, inside the model: the most"
            " frequent category, or the constant category __missing__."
        ),
    )
    model_name: str = Field(
        default="model",
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        description="Name of the model in the store (a DNS label).",
    )
    output_dir: Path = Field(
        default=Path(TRAINER_OUTPUT_DIR),
        description="Where model.onnx and model-card.json are written.",
    )
    store_uri: str | None = Field(
        default=None,
        description="Artifact store root; when set, the dataset snapshot and the model go there.",
    )
    termination_message_path: Path | None = Field(
        default=Path(TERMINATION_MESSAGE_PATH),
        description="Where the short result is written for Kubernetes; None: nowhere.",
    )
    parity_sample_rows: int = Field(
        default=20, ge=1, le=200, description="Held-out rows copied into the model card."
    )
    training_job: str | None = Field(default=None, description="namespace/name, for lineage.")
    image: str | None = Field(default=None, description="The trainer image, for lineage.")

    @model_validator(mode="wrap")
    @classmethod
    def _require_data(
        cls, data: Any, handler: ModelWrapValidatorHandler[TrainerSettings]
    ) -> TrainerSettings:
        """No data at all is reported as the missing ``dataset_uri``, beside the other errors."""
        missing = isinstance(data, dict) and not data.get("dataset_uri") and not data.get("sources")
        required: list[InitErrorDetails] = (
            [{"type": "missing", "loc": ("dataset_uri",), "input": data}] if missing else []
        )
        try:
            settings = handler(data)
        except ValidationError as error:
            if not required:
                raise
            details: list[InitErrorDetails] = []
            for e in error.errors():
                detail: InitErrorDetails = {"type": e["type"], "loc": e["loc"], "input": e["input"]}
                if "ctx" in e:
                    detail["ctx"] = e["ctx"]
                details.append(detail)
            raise ValidationError.from_exception_data(cls.__name__, required + details) from None
        if required:
            raise ValidationError.from_exception_data(cls.__name__, required)
        return settings

    @model_validator(mode="after")
    def _check_folds_and_columns(self) -> TrainerSettings:
        if self.dataset_uri is not None and self.sources:
            raise ValueError("exactly one of dataset_uri and sources must be given")
        if self.cv_folds == 1:
            raise ValueError("cv_folds must be 0 (no cross-validation) or at least 2")
        if self.target in (self.categorical or ()):
            raise ValueError(f"the target {self.target!r} cannot also be a categorical feature")
        if self.features is not None:
            if not self.features:
                raise ValueError("features, when given, must name at least one column")
            if self.target in self.features:
                raise ValueError(f"the target {self.target!r} cannot also be a feature")
            missing = [c for c in self.categorical or () if c not in self.features]
            if missing:
                raise ValueError(f"categorical columns {missing} are not among the features")
        return self

    def data_sources(self) -> list[DataSource]:
        """The sources to read: `sources`, or `dataset_uri` as the one source."""
        if self.sources:
            return list(self.sources)
        assert self.dataset_uri is not None  # the validator requires one of them
        return [DataSource(uri=self.dataset_uri, format=self.dataset_format)]

    def to_env(self) -> dict[str, str]:
        """The environment variables that reproduce these settings in the trainer pod.

        Fields set to None are left out, so they take their default there.
        """
        env: dict[str, str] = {}
        for name, value in self.model_dump(mode="json").items():
            if value is None:
                continue
            env[f"{ENV_PREFIX}{name.upper()}"] = (
                value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            )
        return env


def describe_invalid(error: ValidationError, spell: Callable[[str], str]) -> str:
    """One sentence naming each invalid setting the way the user wrote it.

    ``spell`` turns a field name into that spelling (an environment variable, a flag).
    """
    problems = []
    for item in error.errors():
        where = spell(str(item["loc"][0])) if item["loc"] else "settings"
        problems.append(f"{where}: {item['msg'].removeprefix('Value error, ')}")
    return "invalid settings: " + "; ".join(problems)
