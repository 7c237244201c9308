"""Reproducibility: the same spec and the same data give the same model, byte for byte.

Aspects: two runs (one in a fresh process) give identical ONNX bytes and
metrics; the seed changes the model; a fresh process matters because ONNX
node names could depend on per-process state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mlops_operator.modelcard import MODEL_FILE
from mlops_operator.trainer.run import train
from tests.unit.trainer.conftest import MakeSettings


def test_two_runs_give_the_same_onnx_bytes_and_metrics(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    params = {"n_estimators": 20}
    first = train(
        make_settings(estimator="RandomForestClassifier", params=params, output_dir=tmp_path / "a")
    )
    second = train(
        make_settings(estimator="RandomForestClassifier", params=params, output_dir=tmp_path / "b")
    )

    assert first.result.sha256 == second.result.sha256
    assert (tmp_path / "a" / MODEL_FILE).read_bytes() == (tmp_path / "b" / MODEL_FILE).read_bytes()
    assert first.card.metrics == second.card.metrics
    assert first.card.reference == second.card.reference
    assert first.card.parity == second.card.parity


def test_a_fresh_process_gives_the_same_bytes(make_settings: MakeSettings, tmp_path: Path) -> None:
    settings = make_settings(
        dataset_uri="sklearn://diabetes",
        estimator="GradientBoostingRegressor",
        params={"n_estimators": 20},
    )
    local = train(settings).result

    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    env |= settings.model_copy(update={"output_dir": tmp_path / "fresh"}).to_env()
    done = subprocess.run(
        [sys.executable, "-m", "mlops_operator.trainer"],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr
    fresh = json.loads(done.stdout)
    assert fresh["sha256"] == local.sha256
    assert fresh["metrics"] == local.metrics
    assert (tmp_path / "fresh" / MODEL_FILE).read_bytes() == (
        settings.output_dir / MODEL_FILE
    ).read_bytes()


def test_another_seed_gives_another_model(make_settings: MakeSettings, tmp_path: Path) -> None:
    params = {"n_estimators": 20}
    first = train(
        make_settings(estimator="RandomForestClassifier", params=params, output_dir=tmp_path / "a")
    )
    other = train(
        make_settings(
            estimator="RandomForestClassifier", params=params, seed=1, output_dir=tmp_path / "b"
        )
    )

    assert first.result.sha256 != other.result.sha256
    assert other.card.lineage.params["random_state"] == 1
