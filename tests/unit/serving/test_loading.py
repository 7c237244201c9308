"""Loading refuses what it must not serve: tampered artifacts, pickles, garbage, mismatched cards.

Aspects: a byte changed in model.onnx (sha256 mismatch), a pickle renamed
model.onnx with a card that matches it, bytes that are not ONNX, a card whose
signature disagrees with the model, a missing card; and `mlops serve` itself
refusing to start with a clear log line and exit code 3.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression

from mlops_operator.modelcard import MODEL_CARD_FILE, MODEL_FILE, ModelCard, TensorSpec
from mlops_operator.podcontract import EXIT_ARTIFACT_REFUSED
from mlops_operator.serving.errors import ArtifactError
from mlops_operator.serving.loading import load_model
from tests.unit.serving.conftest import ModelDir


def _copy(model: ModelDir, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(model.path, target)
    return target


def _write_card(directory: Path, card: ModelCard) -> None:
    (directory / MODEL_CARD_FILE).write_text(card.model_dump_json())


def _replace_artifact(directory: Path, card: ModelCard, data: bytes) -> None:
    """Put ``data`` in place of the model and make the card agree with it (sha256 and size)."""
    (directory / MODEL_FILE).write_bytes(data)
    artifact = card.artifact.model_copy(
        update={"sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data)}
    )
    _write_card(directory, card.model_copy(update={"artifact": artifact}))


def test_a_good_artifact_loads(iris_lr: ModelDir) -> None:
    model = load_model(str(iris_lr.path), threads=1)
    assert model.sha256 == iris_lr.card.artifact.sha256
    assert model.version == f"sha256-{iris_lr.card.artifact.sha256[:12]}"


def test_a_tampered_artifact_is_refused(iris_lr: ModelDir, tmp_path: Path) -> None:
    directory = _copy(iris_lr, tmp_path)
    data = bytearray((directory / MODEL_FILE).read_bytes())
    data[-1] ^= 0xFF
    (directory / MODEL_FILE).write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"sha256 mismatch for .*model\.onnx.*expects"):
        load_model(str(directory), threads=1)


def test_a_pickle_renamed_onnx_is_refused_even_with_a_matching_card(
    iris_lr: ModelDir, tmp_path: Path
) -> None:
    directory = _copy(iris_lr, tmp_path)
    _replace_artifact(directory, iris_lr.card, pickle.dumps(LogisticRegression()))
    with pytest.raises(ArtifactError, match="is a Python pickle, not an ONNX model"):
        load_model(str(directory), threads=1)


def test_bytes_that_are_not_onnx_are_refused(iris_lr: ModelDir, tmp_path: Path) -> None:
    directory = _copy(iris_lr, tmp_path)
    _replace_artifact(directory, iris_lr.card, b"this is not a model")
    with pytest.raises(ArtifactError, match="is not a loadable ONNX model"):
        load_model(str(directory), threads=1)


def test_a_card_that_disagrees_with_the_model_is_refused(iris_lr: ModelDir, tmp_path: Path) -> None:
    directory = _copy(iris_lr, tmp_path)
    signature = iris_lr.card.signature.model_copy(
        update={"inputs": [TensorSpec(name="features", dtype="float32", shape=[None, 4])]}
    )
    _write_card(directory, iris_lr.card.model_copy(update={"signature": signature}))
    with pytest.raises(ArtifactError, match="do not match the model card's inputs"):
        load_model(str(directory), threads=1)


def test_a_missing_card_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"cannot read model-card\.json"):
        load_model(str(tmp_path), threads=1)


def test_mlops_serve_refuses_to_start_on_a_tampered_artifact(
    iris_lr: ModelDir, tmp_path: Path
) -> None:
    directory = _copy(iris_lr, tmp_path)
    (directory / MODEL_FILE).write_bytes((directory / MODEL_FILE).read_bytes() + b"\0")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlops_operator.cli",
            "serve",
            "--model-dir",
            str(directory),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == EXIT_ARTIFACT_REFUSED
    assert "refusing to start: sha256 mismatch" in result.stderr


def test_model_and_card_swapped_together_are_refused_against_the_registered_digest(
    iris_lr: ModelDir, iris_forest: ModelDir, tmp_path: Path
) -> None:
    # Consistent with each other, so only the ModelVersion's digest can tell.
    directory = _copy(iris_lr, tmp_path)
    for name in (MODEL_FILE, MODEL_CARD_FILE):
        shutil.copyfile(iris_forest.path / name, directory / name)
    assert load_model(str(directory), threads=1).sha256 == iris_forest.card.artifact.sha256
    registered = iris_lr.card.artifact.sha256
    with pytest.raises(ArtifactError) as refused:
        load_model(str(directory), threads=1, expected_sha256=registered)
    message = str(refused.value)
    assert f"hashes to {iris_forest.card.artifact.sha256}" in message
    assert f"the ModelVersion registers {registered}" in message


def test_mlops_serve_leaves_its_refusal_as_the_termination_message(
    iris_lr: ModelDir, iris_forest: ModelDir, tmp_path: Path
) -> None:
    directory = _copy(iris_forest, tmp_path)
    termination = tmp_path / "termination-log"
    result = subprocess.run(
        [sys.executable, "-m", "mlops_operator.cli", "serve", "--model-dir", str(directory),
         "--host", "127.0.0.1", "--port", "0"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "MLOPS_EXPECTED_SHA256": iris_lr.card.artifact.sha256,
             "MLOPS_TERMINATION_MESSAGE_PATH": str(termination)},
    )  # fmt: skip
    assert result.returncode == EXIT_ARTIFACT_REFUSED
    written = termination.read_text()
    assert written.startswith("artifact refused: sha256 mismatch")
    assert iris_lr.card.artifact.sha256 in written
    assert iris_forest.card.artifact.sha256 in written
