"""The served model: an onnxruntime session plus what its card says about it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from mlops_operator.modelcard import Feature, ModelCard, TensorSpec

__all__ = ["NUMPY_DTYPES", "V2_DATATYPES", "ServedModel"]

NUMPY_DTYPES: dict[str, Any] = {
    "float32": np.float32,
    "float64": np.float64,
    "int64": np.int64,
    "string": np.object_,
}
# Open Inference Protocol names of the card's dtypes.
V2_DATATYPES = {"float32": "FP32", "float64": "FP64", "int64": "INT64", "string": "BYTES"}


@dataclass(frozen=True)
class ServedModel:
    """One loaded model. ``run`` is thread-safe (onnxruntime sessions are)."""

    name: str
    version: str
    card: ModelCard
    session: ort.InferenceSession
    inputs: dict[str, TensorSpec] = field(init=False)
    features_by_input: dict[str, list[Feature]] = field(init=False)
    output_names: list[str] = field(init=False)
    # All outputs, in the card's output order, for a batch of feeds: onnxruntime's run with
    # the output names bound (a partial, not a method around it: one Python frame less on
    # every call).
    run: Callable[[dict[str, npt.NDArray[Any]]], list[npt.NDArray[Any]]] = field(init=False)

    def __post_init__(self) -> None:
        grouped: dict[str, list[Feature]] = {spec.name: [] for spec in self.card.signature.inputs}
        for feature in self.card.signature.features:
            grouped[feature.input].append(feature)
        for features in grouped.values():
            features.sort(key=lambda f: f.index)
        object.__setattr__(self, "inputs", {s.name: s for s in self.card.signature.inputs})
        object.__setattr__(self, "features_by_input", grouped)
        object.__setattr__(self, "output_names", [s.name for s in self.card.signature.outputs])
        object.__setattr__(self, "run", partial(self.session.run, self.output_names))

    @property
    def sha256(self) -> str:
        """Content address of the ONNX artifact."""
        return self.card.artifact.sha256

    @property
    def feature_names(self) -> list[str]:
        """Feature names in the order `/predict` list rows use."""
        return [f.name for f in self.card.signature.features]

    @property
    def is_classifier(self) -> bool:
        """Whether the model returns class labels (and probabilities)."""
        return self.card.signature.task == "classification"

    @property
    def single_input(self) -> bool:
        """Whether all features travel in one input, in card order (the common fast path)."""
        if len(self.inputs) != 1:
            return False
        order = [(f.name, f.index) for f in next(iter(self.features_by_input.values()))]
        return order == [(f.name, i) for i, f in enumerate(self.card.signature.features)]
