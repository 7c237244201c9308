"""The iris loop on `s3://`, against the local cluster's real S3 server (versitygw), audit log included.

The demo's stages with ``object_store=True``: the operator's artifact store is
``s3://mlops/<namespace>`` with its credentials in a Secret (the pods get them through
``envFrom``; the operator never reads it), and v1's dataset is a CSV in the bucket, read by
the trainer with the same Secret. Asserted, reading the bucket from this machine: v1 was
trained on the ``s3://`` dataset; every ModelVersion's artifact is in the bucket and its
bytes have the sha256 the ModelVersion records; the servers wrote their payload log there and
v2 was retrained from it (drift, one retrain, canary, promotion); the audit log of the
ModelDeployment (Deploy v1, then Promote v2, in that order, each once) and of the DriftPolicy
(its retrain) are objects in the bucket, and ``mlops history --full --store s3://…`` reads
the deployment's from there; and no artifact PersistentVolumeClaim was ever made.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_operator.audit import log_key
from mlops_operator.audit.objects import read_objects
from mlops_operator.demo.loop import Demo
from mlops_operator.resources.payloadlog import payload_log_key
from tests.integration.operator.conftest import MLOPS
from tests.kube import get_json, kubectl, wait_for

pytestmark = pytest.mark.timeout(900)


@pytest.fixture
def demo(kubeconfig: Path, namespace: str, tmp_path: Path) -> Iterator[Demo]:
    running = Demo(namespace=namespace, out=tmp_path, object_store=True)
    yield running
    running.finish(remove=True)


def _version(kubeconfig: Path, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = get_json(kubeconfig, "modelversion", name, "-n", namespace)
    return found


def _audited(demo: Demo, plural: str, name: str) -> list[tuple[str, int | None]]:
    entries, bad = read_objects(demo.open_store(), log_key(demo.namespace, plural, name))
    assert bad == 0
    return [(entry.action, entry.version) for entry in entries]


def test_the_loop_runs_on_the_object_store(demo: Demo, kubeconfig: Path, namespace: str) -> None:
    demo.start()
    assert demo.store is not None
    prefix = f"s3://mlops/{namespace}/"

    v1 = demo.train_v1()
    assert v1.facts["phase"] == "Validated"
    assert v1.facts["dataset"] == f"{prefix}datasets/iris.csv"
    demo.deploy()
    demo.watch_reference(evaluations=2)
    demo.shift()
    v2 = demo.retrain()
    assert v2.facts["model_version"] == "iris-v2"
    rollout = demo.rollout()
    assert (2, "Promote") in [(h["version"], h["action"]) for h in rollout.facts["history"]]

    store = demo.open_store()
    for name in ("iris-v1", "iris-v2"):
        spec = _version(kubeconfig, namespace, name)["spec"]
        artifact = spec["artifact"]
        assert artifact["uri"].startswith(prefix), artifact["uri"]
        key = artifact["uri"].removeprefix(prefix) + "/model.onnx"
        assert hashlib.sha256(store.read_bytes(key)).hexdigest() == artifact["sha256"]
    lineage = _version(kubeconfig, namespace, "iris-v1")["spec"]["lineage"]["dataset"]
    assert lineage["uri"] == f"{prefix}datasets/iris.csv"
    assert lineage["rows"] == 150

    logged = store.keys(payload_log_key(namespace, "iris"))
    assert logged, "the servers wrote no payload log to the object store"
    assert any(key.endswith(".jsonl") for key in logged), logged[:5]

    deployment = wait_for(
        lambda: (
            (found := _audited(demo, "modeldeployments", "iris"))
            and (2, "Promote") in [(v, a) for a, v in found]
            and found
        ),
        timeout=180,
        what="the promotion in the ModelDeployment's audit log",
    )
    assert deployment[0] == ("Deploy", 1)
    assert deployment.count(("Promote", 2)) == 1
    assert deployment.index(("Deploy", 1)) < deployment.index(("Promote", 2))
    retrains = wait_for(
        lambda: _audited(demo, "driftpolicies", "iris"),
        timeout=180,
        what="the retrain in the DriftPolicy's audit log",
    )
    assert [action for action, _ in retrains] == ["Retrain"]

    history = subprocess.run(
        [str(MLOPS), "history", "iris", "-n", namespace, "--full", "--store", demo.store_uri],
        env={**os.environ, "KUBECONFIG": str(kubeconfig), **demo.store.env()},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert history.returncode == 0, history.stdout + history.stderr
    table = [line.split()[1:3] for line in history.stdout.splitlines()[1:]]
    assert table[-1] == ["Deploy", "1"]
    assert ["Promote", "2"] in table

    claims = kubectl(kubeconfig, "get", "pvc", "-n", namespace, "-o", "json")
    assert json.loads(claims.stdout)["items"] == [], "an artifact claim was made"
