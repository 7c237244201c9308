"""A real inference server in the cluster, traffic for it, and the operator watching a namespace.

The server is a Deployment the test creates (an init container trains iris with the real
trainer into an emptyDir, the server serves it), labelled as the ModelDeployment
controller labels its pods, annotated for Prometheus; a ClusterIP Service reaches it from
the host through kube-proxy. The ModelDeployment object exists only for the policy to
find the model's name.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import pytest
from sklearn.datasets import load_iris

from mlops_operator.api.pods import DEFAULT_WORKLOAD_SECURITY
from mlops_operator.localcluster.cluster import LocalCluster
from mlops_operator.resources.common import (
    restricted_container_security_context,
    restricted_pod_security_context,
)
from tests.integration.operator.conftest import (  # noqa: F401  (fixtures)
    RunningOperator,
    crds,
    operator_for_test,
)
from tests.kube import get_json, kubectl, wait_for
from tests.ports import free_port

MODEL = "iris"
TRAIN = [
    "python", "-m", "mlops_operator.cli", "train", "--dataset", "sklearn://iris",
    "--target", "target", "--estimator", "LogisticRegression", "--model-name", MODEL,
    "--output", "/models/iris",
]  # fmt: skip
SERVE = ["--model-dir", "/models/iris", "--model-version", "1", "--port", "8080"]


@pytest.fixture(scope="session")
def prometheus_url(local_cluster: LocalCluster) -> str:
    url = local_cluster.env()["PROMETHEUS_URL"]
    assert url, "the local cluster runs no Prometheus"
    return url


@pytest.fixture
def restricted(kubeconfig: Path, namespace: str) -> str:
    """`namespace`, enforcing the restricted Pod Security Standard."""
    kubectl(
        kubeconfig, "label", "namespace", namespace,
        "pod-security.kubernetes.io/enforce=restricted",
    )  # fmt: skip
    return namespace


def server_manifests(namespace: str, deployment: str = MODEL) -> list[dict[str, Any]]:
    labels = {"app": f"{deployment}-server", "mlops.dev/deployment": deployment}
    volumes = [{"name": "models", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]
    mounts = [{"name": "models", "mountPath": "/models"}, {"name": "tmp", "mountPath": "/tmp"}]
    container = {
        "securityContext": restricted_container_security_context(),
        "volumeMounts": mounts,
    }
    pod = {
        "metadata": {
            "labels": labels,
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "8080",
                "prometheus.io/path": "/metrics",
            },
        },
        "spec": {
            "securityContext": restricted_pod_security_context(DEFAULT_WORKLOAD_SECURITY),
            "volumes": volumes,
            "initContainers": [
                {"name": "train", "image": "mlops-operator/trainer", "command": TRAIN, **container}
            ],
            "containers": [
                {
                    "name": "server",
                    "image": "mlops-operator/server",
                    "args": SERVE,
                    "ports": [{"containerPort": 8080}],
                    "readinessProbe": {
                        "httpGet": {"path": "/v2/health/ready", "port": 8080},
                        "periodSeconds": 1,
                    },
                    **container,
                }
            ],
        },
    }
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": f"{deployment}-server", "namespace": namespace},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": pod},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"{deployment}-server", "namespace": namespace},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
        },
        {
            "apiVersion": "mlops.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": deployment, "namespace": namespace},
            "spec": {"modelName": MODEL},
        },
    ]


@dataclass
class Server:
    """The in-cluster inference server, reached through its Service."""

    url: str

    def predict(self, rows: list[list[float]]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.url}/predict",
            data=json.dumps({"rows": rows}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer

    def feedback(self, request_id: str, labels: list[str]) -> None:
        request = urllib.request.Request(
            f"{self.url}/feedback",
            data=json.dumps({"request_id": request_id, "labels": labels}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


@pytest.fixture
def model_deployment(kubeconfig: Path, restricted: str, crds: list[Path]) -> str:  # noqa: F811
    """Only the ModelDeployment a policy names, for tests that need no traffic; its name."""
    manifest = server_manifests(restricted)[-1]
    kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(manifest))
    return str(manifest["metadata"]["name"])


@pytest.fixture
def server(kubeconfig: Path, restricted: str, crds: list[Path]) -> Server:  # noqa: F811
    """An iris server Deployment in the test's namespace, ready."""
    for manifest in server_manifests(restricted):
        kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(manifest))
    kubectl(
        kubeconfig, "-n", restricted, "rollout", "status", f"deployment/{MODEL}-server",
        "--timeout=180s", timeout=200,
    )  # fmt: skip
    service = get_json(kubeconfig, "service", f"{MODEL}-server", "-n", restricted)
    return Server(f"http://{service['spec']['clusterIP']}:80")


class Traffic:
    """Sends iris rows (optionally shifted, optionally labelled) until stopped; bounded."""

    def __init__(self, server: Server, *, shift: float = 1.0, labelled: bool = False) -> None:
        self.server, self.shift, self.labelled = server, shift, labelled
        self.sent = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        iris = load_iris()
        rng = np.random.default_rng(0)
        for _ in range(3000):  # at most ~15 minutes at the pace below
            if self._stop.wait(0.3):
                return
            index = rng.integers(0, 150, 20)
            rows = iris.data[index] * [1.0, 1.0, self.shift, self.shift]
            try:
                answer = self.server.predict(rows.tolist())
                self.sent += len(rows)
                if self.labelled:
                    labels = [str(t) for t in iris.target[index]]
                    self.server.feedback(answer["request_id"], labels)
            except OSError as error:  # the Service's rules may lag the pod's readiness
                self.errors.append(str(error))

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@pytest.fixture
def dead_port() -> int:
    """A loopback port where nothing listens (until a test starts a Prometheus there)."""
    return free_port()


@pytest.fixture
def operator_for(
    kubeconfig: Path,
    restricted: str,
    tmp_path: Path,
    prometheus_url: str,
    dead_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[RunningOperator]:
    """The operator, allowing the policies to name the cluster's Prometheus and `dead_port`."""
    allowed = [prometheus_url, f"http://127.0.0.1:{dead_port}"]
    monkeypatch.setenv("MLOPS_PROMETHEUS_ALLOWED_URLS", ",".join(allowed))
    with operator_for_test(kubeconfig, restricted, tmp_path / "operator.log") as running:
        yield running


def policy(namespace: str, name: str, triggers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    """A DriftPolicy on the test's server, evaluating every 10 s."""
    return {
        "apiVersion": "mlops.dev/v1alpha1",
        "kind": "DriftPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "deployment": MODEL,
            "interval": "10s",
            "window": "30s",
            "cooldown": "1h",
            "consecutiveBreaches": 2,
            "triggers": triggers,
            "retrain": {
                "template": {
                    "modelName": MODEL,
                    "target": "target",
                    "estimator": {"name": "LogisticRegression"},
                    "dataset": {"uri": "sklearn://iris"},
                    "suspend": True,
                }
            },
            **spec,
        },
    }


def status_of(kubeconfig: Path, namespace: str, name: str) -> dict[str, Any]:
    status: dict[str, Any] = (
        get_json(kubeconfig, "driftpolicy", name, "-n", namespace).get("status") or {}
    )
    return status


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == type_), {})


def evaluations(kubeconfig: Path, namespace: str, name: str, count: int) -> dict[str, Any]:
    """Wait for `count` more evaluations; the status after the last."""
    seen: list[str] = []

    def next_one() -> dict[str, Any] | None:
        status = status_of(kubeconfig, namespace, name)
        stamp = status.get("lastEvaluationTime")
        if stamp and stamp not in seen:
            seen.append(stamp)
        return status if len(seen) > count else None

    return wait_for(next_one, timeout=30 * (count + 1), what=f"{count} evaluations of {name}")


def retraining_jobs(kubeconfig: Path, namespace: str, name: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get_json(
        kubeconfig, "trainingjobs", "-n", namespace, "-l", f"mlops.dev/drift-policy={name}"
    )["items"]
    return items
