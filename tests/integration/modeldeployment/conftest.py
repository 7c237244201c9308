"""Fixtures for ModelVersion validation and ModelDeployment rollouts on the local cluster.

Models are trained with the real trainer straight into the namespace's artifact
claim (the local provisioner's hostPath directory), then recorded as
ModelVersions the way the TrainingJob controller does: ``pvc://<claim>/<key>``
plus the card's sha256, signature and metrics.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_operator.api.metadata import TRAINING_JOB_UID_ANNOTATION
from mlops_operator.modelcard import ModelCard
from mlops_operator.trainer.run import train
from mlops_operator.trainer.settings import TrainerSettings
from tests.integration.operator.conftest import RunningOperator, crds, operator_for_test
from tests.kube import get_json, kubectl, wait_for

__all__ = ["crds"]

CLAIM = "mlops-artifacts"


def prometheus_url() -> str | None:
    """The local cluster's Prometheus, from `mlops cluster env`."""
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("mlops")), "cluster", "env"],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    for line in proc.stdout.splitlines():
        if line.startswith("export PROMETHEUS_URL="):
            return line.split("=", 1)[1].strip().strip('"')
    return None


@pytest.fixture
def restricted(kubeconfig: Path, namespace: str, crds: list[Path]) -> str:
    """The test namespace, enforcing the restricted Pod Security Standard, with its artifact claim."""
    kubectl(kubeconfig, "label", "namespace", namespace,
            "pod-security.kubernetes.io/enforce=restricted")  # fmt: skip
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": CLAIM, "namespace": namespace},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(claim))
    return namespace


@pytest.fixture
def store(kubeconfig: Path, restricted: str) -> Path:
    """The host directory behind the namespace's artifact claim."""

    def bound() -> str | None:
        claim = get_json(kubeconfig, "-n", restricted, "pvc", CLAIM)
        return claim["spec"].get("volumeName") if claim["status"].get("phase") == "Bound" else None

    volume = wait_for(bound, timeout=60, what="the artifact claim to bind")
    path = Path(get_json(kubeconfig, "pv", volume)["spec"]["hostPath"]["path"])
    return path


def train_into(
    store: Path, model: str, estimator: str, params: dict[str, Any]
) -> tuple[str, ModelCard]:
    """Train with the real trainer into the store; the model's key and card."""
    result = train(
        TrainerSettings(
            dataset_uri="sklearn://iris", target="target", estimator=estimator,
            params=params,  # type: ignore[arg-type]
            model_name=model, output_dir=store.parent / f".out-{store.name}-{estimator}",
            store_uri=str(store),
        )
    ).result  # fmt: skip
    assert result.model_key is not None
    card = ModelCard.model_validate_json((store / result.model_key / "model-card.json").read_text())
    # The store writes through private temporary files; the server pods run as 65532.
    for path in (store, *store.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return result.model_key, card


def model_version(
    name: str,
    model: str,
    version: int,
    key: str,
    card: ModelCard,
    gates: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ModelVersion for an artifact in the claim, as the TrainingJob controller records one.

    With the annotation naming the TrainingJob's uid (here a made-up one) that only the
    operator sets: without it the version counts as hand-made and is held for approval.
    These namespaces carry no admission policy, so the test may set it.
    """
    signature = card.signature
    spec: dict[str, Any] = {
        "modelName": model,
        "version": version,
        "artifact": {"uri": f"pvc://{CLAIM}/{key}", "sha256": card.artifact.sha256,
                     "sizeBytes": card.artifact.size_bytes, "opset": card.artifact.opset},
        "signature": {
            "task": signature.task,
            "features": [{"name": f.name, "kind": f.kind} for f in signature.features],
            "classes": signature.classes,
        },
        "metrics": {k: v for k, v in card.metrics.items()},
        "primaryMetric": {"name": "accuracy", "value": card.metrics["accuracy"]},
    }  # fmt: skip
    if gates is not None:
        spec["gates"] = gates
    return {"apiVersion": "mlops.dev/v1alpha1", "kind": "ModelVersion",
            "metadata": {"name": name, "annotations": {TRAINING_JOB_UID_ANNOTATION: f"test-{name}"}},
            "spec": spec}  # fmt: skip


def serve_first_of_two(
    kubeconfig: Path, namespace: str, store: Path, deployment: dict[str, Any]
) -> tuple[ModelCard, tuple[str, ModelCard]]:
    """Train v1 and v2 of iris (two regularisations) into the store; record v1 and have
    `deployment` serve it (Ready). v1's card, and v2's key and card for the test to roll out."""
    k1, c1 = train_into(store, "iris", "LogisticRegression", {"C": 0.05, "max_iter": 500})
    k2, c2 = train_into(store, "iris", "LogisticRegression", {"C": 1.0, "max_iter": 500})
    kubectl(kubeconfig, "-n", namespace, "apply", "-f", "-",
            stdin=json.dumps(model_version("iris-v1", "iris", 1, k1, c1)))  # fmt: skip
    kubectl(kubeconfig, "-n", namespace, "apply", "-f", "-", stdin=json.dumps(deployment))
    name = deployment["metadata"]["name"]
    kubectl(kubeconfig, "-n", namespace, "wait", "--for=condition=Ready", f"mdep/{name}",
            "--timeout=240s", timeout=260)  # fmt: skip
    return c1, (k2, c2)


@pytest.fixture
def operator(
    kubeconfig: Path,
    crds: list[Path],
    restricted: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[RunningOperator]:
    """The operator for the test namespace, with the cluster's Prometheus."""
    url = prometheus_url()
    if url:
        monkeypatch.setenv("MLOPS_PROMETHEUS_URL", url)
    with operator_for_test(kubeconfig, restricted, tmp_path / "operator.log") as running:
        yield running
