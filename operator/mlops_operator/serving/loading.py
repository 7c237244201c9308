"""Loading a model from the artifact store: checksum first, ONNX only, threads sized to the pod.

The artifact is read as bytes, its sha256 compared with the one the ModelVersion
registers (when the pod is told it) and with the card's, and only then handed to onnxruntime (from memory, so the file cannot change between the
check and the load). Nothing here unpickles: a pickle or joblib file renamed
``.onnx`` fails the ONNX parse and is refused.
"""

from __future__ import annotations

import hashlib
import logging

import onnxruntime as ort
from pydantic import ValidationError

from mlops_operator.modelcard import MODEL_CARD_FILE, ModelCard, TensorSpec
from mlops_operator.serving.errors import ArtifactError
from mlops_operator.serving.model import ServedModel
from mlops_operator.storage.keys import InvalidKeyError
from mlops_operator.storage.store import ArtifactStore, StorageError

__all__ = ["load_model", "read_artifact", "session_options"]

log = logging.getLogger(__name__)

_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(string)": "string",
}
_PICKLE_MAGIC = b"\x80"


def _read(store: ArtifactStore, key: str) -> bytes:
    try:
        return store.read_bytes(key)
    except (StorageError, InvalidKeyError, OSError) as error:
        raise ArtifactError(f"cannot read {key} from {store.root_uri}: {error}") from error


def read_artifact(model_dir: str, expected_sha256: str | None = None) -> tuple[ModelCard, bytes]:
    """The card and the verified ONNX bytes from ``model_dir`` (a path or fsspec URI).

    With `expected_sha256` (the ModelVersion's registered digest) the bytes must hash to
    it: a model and card replaced together in the store after validation agree with each
    other, never with the registry.
    """
    try:
        store = ArtifactStore(model_dir)
    except StorageError as error:
        raise ArtifactError(str(error)) from error
    try:
        card = ModelCard.model_validate_json(_read(store, MODEL_CARD_FILE))
    except ValidationError as error:
        raise ArtifactError(
            f"{store.uri(MODEL_CARD_FILE)} is not a valid model card: {error}"
        ) from error
    data = _read(store, card.artifact.file)
    artifact_uri = store.uri(card.artifact.file)
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        raise ArtifactError(
            f"sha256 mismatch for {artifact_uri}: the file hashes to {digest} but the ModelVersion"
            f" registers {expected_sha256}; the artifact was replaced or corrupted after it was"
            " registered, and is refused"
        )
    if digest != card.artifact.sha256:
        raise ArtifactError(
            f"sha256 mismatch for {artifact_uri}: the file hashes to {digest} but the model "
            f"card expects {card.artifact.sha256}; the artifact was modified or corrupted"
        )
    if data.startswith(_PICKLE_MAGIC):
        raise ArtifactError(
            f"{artifact_uri} is a Python pickle, not an ONNX model; only ONNX artifacts are "
            "served (pickle and joblib files are never loaded)"
        )
    return card, data


def session_options(threads: int) -> ort.SessionOptions:
    """Session options for ``threads`` intra-op threads, without spinning on idle cores."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning threads burn the pod's CPU quota while waiting for work and get throttled.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _check_signature(declared: list[TensorSpec], actual: list[ort.NodeArg], what: str) -> None:
    found = {arg.name: _ORT_TYPES.get(arg.type, arg.type) for arg in actual}
    expected = {spec.name: spec.dtype for spec in declared}
    if not expected.items() <= found.items():
        raise ArtifactError(
            f"the ONNX model's {what} {found} do not match the model card's {what} {expected}"
        )


def load_model(
    model_dir: str,
    *,
    threads: int,
    name: str | None = None,
    version: str | None = None,
    expected_sha256: str | None = None,
) -> ServedModel:
    """Verify and load the model in ``model_dir``; raises ``ArtifactError`` when it must not serve.

    `expected_sha256`: the digest the ModelVersion registers (see `read_artifact`).
    """
    card, data = read_artifact(model_dir, expected_sha256)
    try:
        session = ort.InferenceSession(
            data, sess_options=session_options(threads), providers=["CPUExecutionProvider"]
        )
    except Exception as error:  # onnxruntime raises its own untyped exceptions on bad models
        raise ArtifactError(
            f"{card.artifact.file} in {model_dir} is not a loadable ONNX model: {error}"
        ) from error
    _check_signature(card.signature.inputs, session.get_inputs(), "inputs")
    _check_signature(card.signature.outputs, session.get_outputs(), "outputs")
    model = ServedModel(
        name=name or card.model_name,
        version=version or f"sha256-{card.artifact.sha256[:12]}",
        card=card,
        session=session,
    )
    log.info(
        "loaded model %s version %s (sha256 %s, %d intra-op threads)",
        model.name,
        model.version,
        model.sha256,
        threads,
    )
    return model
