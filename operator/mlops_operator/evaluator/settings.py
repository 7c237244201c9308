"""The evaluator container's interface: every knob, from ``MLOPS_*`` env vars.

The operator's builder (`resources.evaluator`) renders this class into the pod's
environment and the evaluator reads it back, so the interface is defined once.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["EvaluatorSettings"]


class EvaluatorSettings(BaseSettings):
    """Configuration of the evaluator (env prefix ``MLOPS_``)."""

    model_config = SettingsConfigDict(env_prefix="MLOPS_", extra="forbid", frozen=True)

    labels_uri: str = Field(description="Root of the deployment's prediction and label logs.")
    model_name: str = Field(description="The model the deployment serves (a metric label).")
    window_seconds: float = Field(
        default=3600, gt=0, description="Window length, by prediction time."
    )
    min_label_coverage: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="Share of a window's rows labelled before it is judged.",
    )
    max_label_delay_seconds: float = Field(
        default=24 * 3600, gt=0, description="After this, a window short of labels is expired."
    )
    retention_seconds: float = Field(
        default=7 * 24 * 3600, gt=0, description="How far back predictions are read."
    )
    not_before: float | None = Field(
        default=None,
        description="Unix time before which predictions are not read: the ModelDeployment's"
        " creation, so one deleted and created again under its name does not inherit its"
        " namesake's windows (whose request ids its new key never issued).",
    )
    interval_seconds: float = Field(default=15, gt=0, description="Seconds between two joins.")
    memory_limit: str = Field(
        default="512MB", description="DuckDB's memory limit (it spills past it)."
    )
    host: str = Field(default="0.0.0.0", description="Address of the metrics endpoint.")
    port: int = Field(default=8080, ge=0, le=65535, description="Port of the metrics endpoint.")
    log_level: str = Field(default="INFO", description="Python logging level.")
