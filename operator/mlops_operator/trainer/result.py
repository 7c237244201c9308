"""The trainer's termination message: how a finished training pod reports back.

The operator never opens artifacts, so this message carries everything a
ModelVersion needs besides the TrainingJob's own spec: where the model is and
its sha256, size and opset, the data version and the dataset's shape, the
metrics, a digest of the signature, and the versions of the code and libraries.
Kubernetes keeps at most 4096 bytes of it, so the message stays under
:data:`MAX_TERMINATION_MESSAGE_BYTES`: an oversized success first loses the
signature digest (the model card has the full signature), then the library
versions, then the metrics; an oversized failure message is shortened. The
operator parses it with :func:`parse_termination_message`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from mlops_operator.modelcard import Signature, Task, TensorSpec

__all__ = [
    "MAX_TERMINATION_MESSAGE_BYTES",
    "SignatureDigest",
    "TensorDigest",
    "TrainingFailed",
    "TrainingSucceeded",
    "parse_termination_message",
    "render_termination_message",
]

# Well under Kubernetes' 4096-byte limit, leaving room for a runtime's own notes.
MAX_TERMINATION_MESSAGE_BYTES = 3072


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


TensorDigest = tuple[str, Literal["float32", "float64", "int64", "string"], list[int]]
"""An ONNX input or output as (name, dtype, shape), ``-1`` marking a dynamic dimension."""


def _digest(tensors: list[TensorSpec]) -> list[TensorDigest]:
    return [(t.name, t.dtype, [-1 if d is None else d for d in t.shape]) for t in tensors]


class SignatureDigest(_Message):
    """The model card's signature in short: what a ModelVersion's signature summary holds."""

    task: Task
    features: list[str]
    """Feature columns in order."""
    categorical: list[str] = Field(default_factory=list)
    """The features that are categorical (the others are numeric)."""
    classes: list[str] | None = None
    inputs: list[TensorDigest]
    outputs: list[TensorDigest]

    @classmethod
    def of(cls, signature: Signature) -> SignatureDigest:
        """The digest of a model card's signature."""

        return cls(
            task=signature.task,
            features=[f.name for f in signature.features],
            categorical=[f.name for f in signature.features if f.kind == "categorical"],
            classes=signature.classes,
            inputs=_digest(signature.inputs),
            outputs=_digest(signature.outputs),
        )


class TrainingSucceeded(_Message):
    """A model was trained, checked and written."""

    ok: Literal[True] = True
    model_name: str
    model_uri: str
    """The folder holding model.onnx and model-card.json (in the store when one is set)."""
    model_key: str | None = None
    """That folder's key in the artifact store, when one is set."""
    sha256: str
    """sha256 of model.onnx."""
    size_bytes: int
    """Size of model.onnx."""
    opset: int
    """ONNX opset of the default domain."""
    dataset_sha256: str
    dataset_rows: int
    dataset_columns: int
    dataset_sources: list[tuple[str, int, int]] = Field(default_factory=list)
    """Per source, in order (several sources, or a sampled one): (sha256, rows, rows used)."""
    metrics: dict[str, float]
    code_version: str
    """Version of the trainer code."""
    libraries: dict[str, str] = Field(default_factory=dict)
    signature: SignatureDigest | None = None


class TrainingFailed(_Message):
    """No model: the reason (a :class:`~mlops_operator.trainer.errors.Reason`) and one sentence."""

    ok: Literal[False] = False
    reason: str
    message: str


_RESULT: TypeAdapter[TrainingSucceeded | TrainingFailed] = TypeAdapter(
    TrainingSucceeded | TrainingFailed
)

# What an oversized success gives up, in order: the least needed first.
_DROPPABLE: tuple[dict[str, object], ...] = (
    {"signature": None},
    {"libraries": {}},
    {"metrics": {}},
)


def _fits(text: str) -> bool:
    return len(text.encode()) <= MAX_TERMINATION_MESSAGE_BYTES


def render_termination_message(result: TrainingSucceeded | TrainingFailed) -> str:
    """The result as compact JSON of at most :data:`MAX_TERMINATION_MESSAGE_BYTES` bytes."""
    text = result.model_dump_json()
    if _fits(text):
        return text
    if isinstance(result, TrainingSucceeded):
        for drop in _DROPPABLE:
            result = result.model_copy(update=drop)
            text = result.model_dump_json()
            if _fits(text):
                break
        return text
    overflow = len(text.encode()) - MAX_TERMINATION_MESSAGE_BYTES
    keep = len(result.message.encode()) - overflow - len(b" [...]")
    shortened = result.message.encode()[: max(keep, 0)].decode(errors="ignore") + " [...]"
    return result.model_copy(update={"message": shortened}).model_dump_json()


def parse_termination_message(text: str) -> TrainingSucceeded | TrainingFailed:
    """Read a termination message back (raises pydantic's ValidationError if it is not one)."""
    return _RESULT.validate_json(text)
