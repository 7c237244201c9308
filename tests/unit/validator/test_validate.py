"""The validator on models the real trainer wrote: every check, and the same-rows comparison."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_operator.storage import ArtifactStore
from mlops_operator.trainer.run import train
from mlops_operator.trainer.settings import TrainerSettings
from mlops_operator.validator.report import ValidationReport
from mlops_operator.validator.run import validate
from mlops_operator.validator.settings import ValidatorSettings


def _train(store: Path, name: str, estimator: str, params: dict[str, object]) -> tuple[str, str]:
    settings = TrainerSettings(
        dataset_uri="sklearn://iris",
        target="target",
        estimator=estimator,
        params=params,  # type: ignore[arg-type]
        model_name=name,
        output_dir=store.parent / f"out-{name}-{estimator}",
        store_uri=str(store),
    )
    result = train(settings).result
    assert result.model_key is not None
    return str(store / result.model_key), result.sha256


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("validator") / "store"


@pytest.fixture(scope="module")
def good(store: Path) -> tuple[str, str]:
    return _train(store, "iris", "LogisticRegression", {"max_iter": 500})


@pytest.fixture(scope="module")
def weak(store: Path) -> tuple[str, str]:
    return _train(store, "iris", "DecisionTreeClassifier", {"max_depth": 1})


def test_a_sound_model_passes_every_check(store: Path, good: tuple[str, str]) -> None:
    uri, sha = good
    report = validate(ValidatorSettings(model_uri=uri, expected_sha256=sha, store_uri=str(store)))
    assert [c.name for c in report.checks] == [
        "checksum",
        "artifact",
        "load",
        "signature",
        "parity",
        "evaluation",
    ]
    assert report.passed, report.checks
    assert report.rows == 30  # iris, test_size 0.2
    assert report.candidate_metrics["accuracy"] > 0.85


def test_champion_is_measured_on_the_same_rows(
    store: Path, good: tuple[str, str], weak: tuple[str, str]
) -> None:
    uri, sha = weak
    report = validate(
        ValidatorSettings(
            model_uri=uri,
            expected_sha256=sha,
            store_uri=str(store),
            champions={"iris-v1": good[0]},
        )
    )
    assert report.passed, report.checks
    # A depth-1 tree separates one class of three: at most 2/3 right, the champion far more.
    assert report.candidate_metrics["accuracy"] <= 0.67
    assert report.champion_metrics["iris-v1"]["accuracy"] > 0.85
    # The candidate's own metrics on those rows equal what the trainer recorded: the same
    # split and the same scoring on both sides (ONNX scores in float32, so log loss is close).
    card = json.loads((Path(uri) / "model-card.json").read_text())
    recorded = {k: v for k, v in card["metrics"].items() if not k.startswith("cv_")}
    assert report.candidate_metrics == pytest.approx(recorded, rel=1e-5)


def test_a_checksum_other_than_recorded_is_refused(good: tuple[str, str]) -> None:
    report = validate(ValidatorSettings(model_uri=good[0], expected_sha256="0" * 64))
    assert [(c.name, c.passed) for c in report.checks] == [("checksum", False)]
    # Both digests are named: what the bytes hash to and what the ModelVersion registers.
    assert f"hashes to {good[1]}" in report.checks[0].message
    assert "ModelVersion registers " + "0" * 64 in report.checks[0].message


def test_model_and_card_replaced_together_are_refused(store: Path) -> None:
    # The card agrees with the new bytes; only the digest from the ModelVersion gives them away.
    uri, sha = _train(store, "original", "GaussianNB", {})
    other, other_sha = _train(store, "swapped", "LogisticRegression", {})
    for name in ("model.onnx", "model-card.json"):
        (Path(uri) / name).write_bytes((Path(other) / name).read_bytes())
    report = validate(ValidatorSettings(model_uri=uri, expected_sha256=sha))
    assert [(c.name, c.passed) for c in report.checks] == [("checksum", False)]
    assert f"hashes to {other_sha} but the ModelVersion registers {sha}" in report.checks[0].message


def test_a_modified_artifact_is_refused(store: Path, tmp_path: Path) -> None:
    uri, sha = _train(store, "tampered", "GaussianNB", {})
    stored = ArtifactStore(uri)
    data = bytearray(stored.read_bytes("model.onnx"))
    data[-1] ^= 1
    (Path(uri) / "model.onnx").write_bytes(bytes(data))
    report = validate(ValidatorSettings(model_uri=uri, expected_sha256=sha))
    assert not report.passed
    assert "sha256 mismatch" in report.checks[0].message


def test_a_signature_other_than_recorded_is_refused(store: Path, good: tuple[str, str]) -> None:
    uri, sha = good
    report = validate(
        ValidatorSettings(
            model_uri=uri,
            expected_sha256=sha,
            expected_features=["a", "b", "c", "d"],
            expected_classes=["0", "1", "2"],
            store_uri=str(store),
        )
    )
    signature = next(c for c in report.checks if c.name == "signature")
    assert not signature.passed
    assert "['a', 'b', 'c', 'd'] in the ModelVersion" in signature.message
    assert "evaluation" not in [c.name for c in report.checks]


def test_the_entry_point_reports_through_the_termination_message(
    store: Path, good: tuple[str, str], tmp_path: Path
) -> None:
    message = tmp_path / "termination-log"
    env = {
        "MLOPS_MODEL_URI": good[0],
        "MLOPS_EXPECTED_SHA256": good[1],
        "MLOPS_STORE_URI": str(store),
        "MLOPS_TERMINATION_MESSAGE_PATH": str(message),
    }
    subprocess.run(
        [sys.executable, "-m", "mlops_operator.validator"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    report = ValidationReport.model_validate_json(message.read_text())
    assert report.passed
    assert len(message.read_bytes()) < 4096


def test_settings_render_back_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = ValidatorSettings(
        model_uri="file:///m",
        expected_sha256="a" * 64,
        expected_features=["x", "y"],
        champions={"v1": "file:///c"},
    )
    for entry in settings.to_env():
        monkeypatch.setenv(entry["name"], entry["value"])
    assert ValidatorSettings() == settings  # type: ignore[call-arg]


def _recorded(uri: str) -> tuple[int, int]:
    card = json.loads((Path(uri) / "model-card.json").read_text())
    return card["artifact"]["size_bytes"], card["artifact"]["opset"]


def test_the_recorded_size_and_opset_are_checked(store: Path, good: tuple[str, str]) -> None:
    uri, sha = good
    size, opset = _recorded(uri)
    assert size == (Path(uri) / "model.onnx").stat().st_size
    right = validate(
        ValidatorSettings(
            model_uri=uri, expected_sha256=sha, expected_size_bytes=size,
            expected_opset=opset, store_uri=str(store),
        )
    )  # fmt: skip
    assert right.passed, right.checks
    assert right.checks[1].message == f"{size} bytes, opset {opset} as recorded"

    wrong = validate(
        ValidatorSettings(
            model_uri=uri, expected_sha256=sha, expected_size_bytes=size + 1,
            expected_opset=opset + 1,
        )
    )  # fmt: skip

    assert [(c.name, c.passed) for c in wrong.checks] == [("checksum", True), ("artifact", False)]
    assert wrong.checks[1].message == (
        f"model.onnx has {size} bytes but the ModelVersion records {size + 1};"
        f" model.onnx imports opset {opset} but the ModelVersion records {opset + 1}"
    )
