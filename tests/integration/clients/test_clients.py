"""Other projects' real clients against ``mlops serve``: KServe's SDK and Triton's clients.

Aspects: KServe's ``InferenceRESTClient`` (protocol v2, JSON and binary tensors; protocol
v1) and ``InferenceGRPCClient``, and tritonclient's HTTP client with its defaults (binary
tensors) and its gRPC client (raw contents): readiness, metadata and inference, with the
labels equal to the model card's parity sample, for a numeric model and for the trainer's
categorical export (BYTES inputs). The clients run in the competitors' venv that
benchmarks/serving/bench_compare.py builds (created here when missing, cached in
``~/.cache/mlops-operator/bench-venvs``; the first creation needs PyPI). No cluster is
needed: the server is ``mlops serve`` on loopback.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from benchmarks.serving.venvs import VENVS, ensure_venv

from mlops_operator.modelcard import ModelCard
from mlops_operator.trainer.run import train
from mlops_operator.trainer.settings import TrainerSettings
from tests.ports import free_port
from tests.unit.serving.conftest import ModelDir

HERE = Path(__file__).resolve().parent

# One worker makes the module's clients venv (created in a shared cache when missing: two
# workers creating it at once would race) and its trained models once.
pytestmark = pytest.mark.xdist_group("competitor-clients")


@pytest.fixture(scope="module")
def clients_python() -> Path:
    venv = VENVS["kserve"]
    failure = ensure_venv(venv)
    assert failure is None, f"the competitors' venv did not install: {failure}"
    return venv.python


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ModelDir]:
    root = tmp_path_factory.mktemp("client-models")
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, 300).astype(float),
            "plan": rng.choice(["basic", "plus", "pro"], 300),
        }
    )
    frame["churned"] = np.where((frame["plan"] == "pro") | (frame["age"] < 30), "yes", "no")
    frame.to_csv(root / "churn.csv", index=False)
    specs = {
        "iris": TrainerSettings(dataset_uri="sklearn://iris", target="target",
                                estimator="LogisticRegression", model_name="iris",
                                output_dir=root / "iris"),
        "churn": TrainerSettings(dataset_uri=str(root / "churn.csv"), target="churned",
                                 categorical=["plan"], estimator="LogisticRegression",
                                 model_name="churn", output_dir=root / "churn"),
    }  # fmt: skip
    found = {}
    for name, settings in specs.items():
        train(settings)
        card = ModelCard.model_validate_json((settings.output_dir / "model-card.json").read_text())
        found[name] = ModelDir(settings.output_dir, card)
    return found


@pytest.fixture(params=["iris", "churn"])
def served(
    request: pytest.FixtureRequest, models: dict[str, ModelDir]
) -> Iterator[tuple[ModelDir, int, int]]:
    model = models[request.param]
    http, grpc = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mlops_operator.cli", "serve", "--model-dir", str(model.path),
         "--host", "127.0.0.1", "--port", str(http), "--grpc-port", str(grpc), "--workers", "1",
         "--log-level", "WARNING"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/v2/health/ready", timeout=2):
                break
        except OSError:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.2)
    yield model, http, grpc
    process.terminate()
    process.wait(30)


def _tensors(model: ModelDir) -> dict[str, Any]:
    rows = model.card.parity.sample_inputs
    features = model.card.signature.features
    names = [f.name for f in features]
    tensors = {}
    for spec in model.card.signature.inputs:
        members = sorted((f for f in features if f.input == spec.name), key=lambda f: f.index)
        positions = [names.index(f.name) for f in members]
        values = [row[p] for row in rows for p in positions]
        datatype = "BYTES" if spec.dtype == "string" else "FP32"
        tensors[spec.name] = [[len(rows), len(positions)], datatype, values]
    return tensors


def test_kserve_and_triton_clients_infer_the_parity_sample(
    clients_python: Path, served: tuple[ModelDir, int, int]
) -> None:
    model, http, grpc = served
    results: dict[str, Any] = {}
    for family in ("kserve", "triton"):
        done = subprocess.run(
            [str(clients_python), str(HERE / "clients.py"), family, f"http://127.0.0.1:{http}",
             f"127.0.0.1:{grpc}", model.card.model_name, json.dumps(_tensors(model)),
             json.dumps(model.card.parity.sample_inputs)],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        results |= json.loads(done.stdout.strip().splitlines()[-1])
    expected = model.card.parity.sample_outputs
    rest = results["kserve_rest"]
    assert rest["server_ready"] is True
    assert rest["model_ready"] is True
    assert rest["json"] == expected
    assert rest["binary"] == expected
    assert rest["v1"] == expected
    assert results["kserve_grpc"]["server_ready"] is True
    assert results["kserve_grpc"]["model_ready"] is True
    assert results["kserve_grpc"]["labels"] == expected
    for client in ("triton_http", "triton_grpc"):
        answer = results[client]
        assert answer["server_live"] is True, client
        assert answer["server_ready"] is True, client
        assert answer["model_ready"] is True, client
        assert answer["metadata_name"] == model.card.model_name, client
        assert answer["metadata_inputs"] == [s.name for s in model.card.signature.inputs], client
        assert answer["labels"] == expected, client
