"""The validation Job's container interface, read from ``MLOPS_*`` variables.

The operator's Job builder (`mlops_operator.resources.validation`) renders this
class with `ValidatorSettings.to_env`; the pod reads it back. Lists and
mappings travel as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlops_operator.podcontract import ENV_PREFIX, TERMINATION_MESSAGE_PATH

__all__ = ["ValidatorSettings"]


class ValidatorSettings(BaseSettings):
    """Which artifact to check, what it must be, and whom to compare it with."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    model_uri: str = Field(
        min_length=1, description="Folder (path or fsspec URI) with model.onnx and its card."
    )
    expected_sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="The ModelVersion's recorded sha256."
    )
    expected_size_bytes: int | None = Field(
        default=None, ge=1, description="The ModelVersion's recorded size of model.onnx."
    )
    expected_opset: int | None = Field(
        default=None, ge=1, description="The ModelVersion's recorded default-domain ONNX opset."
    )
    expected_features: list[str] | None = Field(
        default=None, description="The ModelVersion's feature names in order, when recorded."
    )
    expected_classes: list[str] | None = Field(
        default=None, description="The ModelVersion's class labels, when recorded."
    )
    champions: dict[str, str] = Field(
        default_factory=dict,
        description="Champion ModelVersion name -> its model folder, evaluated on the same rows.",
    )
    store_uri: str | None = Field(
        default=None, description="The artifact store holding the dataset snapshot."
    )
    termination_message_path: Path = Field(
        default=Path(TERMINATION_MESSAGE_PATH), description="Where the report is written."
    )

    def to_env(self) -> list[dict[str, str]]:
        """The settings as container ``env`` entries (defaults left out)."""
        values = self.model_dump(mode="json", exclude_defaults=True)
        env = []
        for name, value in values.items():
            text = (
                value
                if isinstance(value, str)
                else json.dumps(value, separators=(",", ":"), sort_keys=True)
            )
            env.append({"name": f"{ENV_PREFIX}{name.upper()}", "value": text})
        return env
