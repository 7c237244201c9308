"""The trainer's termination message: how a finished training pod reports back.

Kubernetes keeps at most 4096 bytes of it, so it carries only where the model
card is, the model's sha256, the data version and the metrics; the card itself,
and everything large, is in the output directory or the artifact store. The
operator parses it with :func:`parse_termination_message`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter

__all__ = [
    "MAX_TERMINATION_MESSAGE_BYTES",
    "TrainingFailed",
    "TrainingSucceeded",
    "parse_termination_message",
    "render_termination_message",
]

# Well under Kubernetes' 4096-byte limit, leaving room for a runtime's own notes.
MAX_TERMINATION_MESSAGE_BYTES = 2048


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    dataset_sha256: str
    metrics: dict[str, float]


class TrainingFailed(_Message):
    """No model: the reason (a :class:`~mlops_operator.trainer.errors.Reason`) and one sentence."""

    ok: Literal[False] = False
    reason: str
    message: str


_RESULT: TypeAdapter[TrainingSucceeded | TrainingFailed] = TypeAdapter(
    TrainingSucceeded | TrainingFailed
)


def render_termination_message(result: TrainingSucceeded | TrainingFailed) -> str:
    """The result as compact JSON of at most :data:`MAX_TERMINATION_MESSAGE_BYTES` bytes.

    A long failure message is shortened; metrics are dropped from an oversized
    success (they are in the model card too).
    """
    text = result.model_dump_json()
    if len(text.encode()) <= MAX_TERMINATION_MESSAGE_BYTES:
        return text
    if isinstance(result, TrainingSucceeded):
        return result.model_copy(update={"metrics": {}}).model_dump_json()
    overflow = len(text.encode()) - MAX_TERMINATION_MESSAGE_BYTES
    keep = len(result.message.encode()) - overflow - len(b" [...]")
    shortened = result.message.encode()[: max(keep, 0)].decode(errors="ignore") + " [...]"
    return result.model_copy(update={"message": shortened}).model_dump_json()


def parse_termination_message(text: str) -> TrainingSucceeded | TrainingFailed:
    """Read a termination message back (raises pydantic's ValidationError if it is not one)."""
    return _RESULT.validate_json(text)
