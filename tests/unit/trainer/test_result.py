"""The termination message stays well under Kubernetes' 4096-byte limit.

Aspects: a long failure is shortened and still parses; an oversized success
gives up the signature digest first, then the library versions, then the
metrics, and always keeps the model; a normal result is kept whole; the
digest of a real model card's signature.
"""

from __future__ import annotations

from typing import Any

from mlops_operator.modelcard import Feature, Signature, TensorSpec
from mlops_operator.trainer.result import (
    MAX_TERMINATION_MESSAGE_BYTES,
    SignatureDigest,
    TrainingFailed,
    TrainingSucceeded,
    parse_termination_message,
    render_termination_message,
)


def _succeeded(**changes: Any) -> TrainingSucceeded:
    values: dict[str, Any] = {
        "model_name": "m",
        "model_uri": "file:///store/models/m/" + "0" * 64,
        "model_key": "models/m/" + "0" * 64,
        "sha256": "0" * 64,
        "size_bytes": 1234,
        "opset": 17,
        "dataset_sha256": "1" * 64,
        "dataset_rows": 150,
        "dataset_columns": 5,
        "metrics": {"accuracy": 0.9},
        "code_version": "0.1.0",
        "libraries": {"scikit-learn": "1.7.2", "onnx": "1.19.0"},
        "signature": SignatureDigest(
            task="classification",
            features=["a", "b"],
            classes=["x", "y"],
            inputs=[("input", "float32", [-1, 2])],
            outputs=[("label", "string", [-1])],
        ),
    }
    return TrainingSucceeded(**(values | changes))


def test_a_long_failure_message_is_shortened_and_still_parses() -> None:
    failed = TrainingFailed(reason="InvalidDataset", message="column 'é\"x' " + "is bad " * 1000)

    text = render_termination_message(failed)

    assert len(text.encode()) <= MAX_TERMINATION_MESSAGE_BYTES
    parsed = parse_termination_message(text)
    assert isinstance(parsed, TrainingFailed)
    assert parsed.message.startswith("column 'é\"x' is bad")
    assert parsed.message.endswith(" [...]")


def test_a_wide_signature_is_dropped_first() -> None:
    wide = _succeeded().signature.model_copy(  # type: ignore[union-attr]
        update={"features": [f"pixel_{i:04d}" for i in range(400)]}
    )
    succeeded = _succeeded(signature=wide)

    text = render_termination_message(succeeded)

    assert len(text.encode()) <= MAX_TERMINATION_MESSAGE_BYTES
    assert parse_termination_message(text) == succeeded.model_copy(update={"signature": None})


def test_an_oversized_success_drops_its_metrics_last_but_keeps_the_model() -> None:
    succeeded = _succeeded(metrics={f"metric_{i}": 0.123456789 for i in range(200)})

    text = render_termination_message(succeeded)

    assert len(text.encode()) <= MAX_TERMINATION_MESSAGE_BYTES
    assert parse_termination_message(text) == succeeded.model_copy(
        update={"signature": None, "libraries": {}, "metrics": {}}
    )


def test_a_normal_result_is_kept_whole() -> None:
    succeeded = _succeeded()

    assert parse_termination_message(render_termination_message(succeeded)) == succeeded


def test_the_digest_keeps_names_kinds_classes_and_tensor_shapes() -> None:
    signature = Signature(
        task="classification",
        inputs=[TensorSpec(name="age", dtype="float32", shape=[None, 1])],
        outputs=[TensorSpec(name="label", dtype="string", shape=[None])],
        features=[
            Feature(name="age", kind="numeric", input="age", index=0),
            Feature(name="plan", kind="categorical", input="plan", index=0),
        ],
        classes=["no", "yes"],
    )

    assert SignatureDigest.of(signature) == SignatureDigest(
        task="classification",
        features=["age", "plan"],
        categorical=["plan"],
        classes=["no", "yes"],
        inputs=[("age", "float32", [-1, 1])],
        outputs=[("label", "string", [-1])],
    )
