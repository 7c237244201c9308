"""Where a TrainingJob reads a payload log: the ModelDeployment's ``payloadLogging.uri``, read
through the real API server.

Aspects: a deployment that moved its log elsewhere gives that place for each source naming it
(a single source, or one of several); a deployment that logs to the artifact store, or that is
gone, gives none, so the trainer reads the store's folder.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mlops_operator.api.trainingjob import TrainingJob
from mlops_operator.handlers.trainingjob import _payload_logs
from mlops_operator.k8s import KubeClient
from tests.integration.operator.conftest import operator_client
from tests.kube import kubectl


@pytest.fixture
async def kube(kubeconfig: Path, crds: list[Path]) -> AsyncIterator[KubeClient]:
    async with operator_client(kubeconfig) as client:
        yield client


def _deployment(kubeconfig: Path, namespace: str, name: str, uri: str | None) -> None:
    logging = {"enabled": True, **({"uri": uri} if uri else {})}
    manifest = {"apiVersion": "mlops.dev/v1alpha1", "kind": "ModelDeployment",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"modelName": "iris", "payloadLogging": logging}}  # fmt: skip
    kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(manifest))


def _training(namespace: str, dataset: dict[str, object]) -> TrainingJob:
    return TrainingJob.model_validate({
        "metadata": {"name": "retrain", "namespace": namespace, "uid": "u"},
        "spec": {"modelName": "iris", "target": "target",
                 "estimator": {"name": "LogisticRegression"}, "dataset": dataset},
    })  # fmt: skip


async def test_a_moved_log_is_read_where_its_deployment_writes_it(
    kube: KubeClient, kubeconfig: Path, namespace: str
) -> None:
    _deployment(kubeconfig, namespace, "moved", "s3://logs/iris")
    _deployment(kubeconfig, namespace, "stored", None)
    single = _training(namespace, {"fromPayloadLog": {"deployment": "moved"}})
    assert await _payload_logs(kube, single) == {"moved": "s3://logs/iris"}
    several = _training(namespace, {"sources": [
        {"uri": "sklearn://iris"},
        {"fromPayloadLog": {"deployment": "moved"}},
        {"fromPayloadLog": {"deployment": "stored"}},
        {"fromPayloadLog": {"deployment": "gone"}},
    ]})  # fmt: skip
    assert await _payload_logs(kube, several) == {"moved": "s3://logs/iris"}
