"""`kubectl mlops status` and `kubectl mlops lineage` on objects in the real API server.

Aspects: kubectl finds the plugin (`kubectl-mlops` on PATH) and passes it the arguments; the
status of objects created here (status written through the status subresource, as the
operator writes it) reads back in text and JSON; lineage prints the tree from the dataset to
the deployment; a missing ModelVersion and an unreachable cluster fail with a message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.kube import KUBECTL, kubectl
from tests.unit.plugin.objects import load

BIN = Path(sys.executable).parent


def _create(kubeconfig: Path, namespace: str, obj: dict[str, Any]) -> None:
    obj = json.loads(json.dumps(obj))
    status = obj.pop("status")
    obj["metadata"] = {"name": obj["metadata"]["name"], "namespace": namespace}
    kubectl(kubeconfig, "create", "-f", "-", stdin=json.dumps(obj))
    kind = f"{obj['kind'].lower()}s.mlops.dev".replace("policys", "policies")
    kubectl(
        kubeconfig,
        "patch",
        kind,
        obj["metadata"]["name"],
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )


def _plugin(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`kubectl mlops ARGS` with the venv's bin (and so kubectl-mlops) on PATH."""
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
        "KUBECTL": str(KUBECTL),
        "KUBECONFIG": str(kubeconfig),
    }
    return subprocess.run(
        [str(KUBECTL), "mlops", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.usefixtures("crds")
def test_status_and_lineage_of_real_objects(kubeconfig: Path, namespace: str) -> None:
    for kind, case in (
        ("TrainingJob", "succeeded"),
        ("ModelVersion", "validated"),
        ("ModelDeployment", "available"),
        ("DriftPolicy", "no-drift"),
    ):
        _create(kubeconfig, namespace, load(kind, case))

    text = _plugin(kubeconfig, "status", "-n", namespace)
    assert text.returncode == 0, text.stderr
    header, row = text.stdout.splitlines()
    assert header.split() == [
        "MODEL",
        "VERSIONS",
        "LATEST",
        "CHAMPION",
        "CHALLENGER",
        "SERVING",
        "TRAINING",
        "DRIFT",
    ]
    assert row.split() == [
        "churn",
        "1",
        "v4",
        "Validated",
        "v4",
        "-",
        "0/3",
        "Available",
        "churn-2026-11-26",
        "Succeeded",
        "ok",
    ]

    answer = _plugin(kubeconfig, "status", "-A", "-o", "json")
    assert answer.returncode == 0, answer.stderr
    (ours,) = [m for m in json.loads(answer.stdout)["models"] if m["namespace"] == namespace]
    assert ours["champion"] == "v4"

    tree = _plugin(kubeconfig, "lineage", "churn-v4", "-n", namespace)
    assert tree.returncode == 0, tree.stderr
    assert tree.stdout.splitlines()[1:] == [
        "└─ TrainingJob churn-2026-11-26  Succeeded  GradientBoostingClassifier seed=7",
        "   └─ ModelVersion churn-v4  v4  roc_auc=0.912  Validated  (retrained from churn-v3)",
        "      └─ ModelDeployment churn  champion",
    ]
    lineage = json.loads(
        _plugin(kubeconfig, "lineage", "churn-v4", "-n", namespace, "-o", "json").stdout
    )
    assert lineage["modelVersion"]["namespace"] == namespace
    assert lineage["trainingJob"]["exists"] is True

    missing = _plugin(kubeconfig, "lineage", "churn-v9", "-n", namespace)
    assert missing.returncode == 1
    assert "ModelVersion 'churn-v9' not found" in missing.stderr


def test_an_unreachable_cluster_fails_with_kubectls_message(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "x",
                "clusters": [{"name": "x", "cluster": {"server": "https://127.0.0.1:1"}}],
                "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}],
                "users": [{"name": "x", "user": {}}],
            }
        )
    )
    answer = _plugin(config, "status", "-n", "default")
    assert answer.returncode == 1
    assert answer.stderr.startswith("mlops status: kubectl get trainingjobs.mlops.dev")
    assert "error" in answer.stderr.split("--namespace default: ", 1)[1]
