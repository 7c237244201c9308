"""The audit log on the local cluster: decisions reach the claim as JSON lines, once, in order.

v1 deployed, v2 promoted (Recreate), a manual rollback to v1: the audit Jobs
append ``Deploy 1, Promote 2, Rollback 1`` to
``audit/<ns>/modeldeployments/iris.jsonl`` in the claim's host directory, each
once; ``mlops history --full`` reads them; the operator's ``/metrics`` counts the
promotion and the rollback.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.integration.modeldeployment.conftest import model_version, train_into
from tests.integration.operator.conftest import MLOPS, RunningOperator
from tests.kube import get_json, kubectl, wait_for

MDEP = "iris"
DEPLOYMENT = {
    "apiVersion": "mlops.dev/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": MDEP},
    "spec": {"modelName": "iris", "replicas": 1, "rollout": {"strategy": "Recreate"}},
}


def _apply(kubeconfig: Path, ns: str, manifest: dict[str, Any]) -> None:
    kubectl(kubeconfig, "-n", ns, "apply", "-f", "-", stdin=json.dumps(manifest))


def _mlops(kubeconfig: Path, *args: str) -> str:
    proc = subprocess.run(
        [str(MLOPS), *args], env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _logged(path: Path) -> list[tuple[str, int]]:
    if not path.exists():
        return []
    return [(e["action"], e["version"]) for e in map(json.loads, path.read_text().splitlines())]


def _metric(operator: RunningOperator, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in operator.metrics().splitlines():
        if line.startswith(f"{name}{{"):
            series, value = line.rsplit(" ", 1)
            if ",".join(sorted(series[len(name) + 1 : -1].split(","))) == wanted:
                return float(value)
    return 0.0


def test_promotion_and_rollback_reach_the_audit_log_once_in_order(
    kubeconfig: Path, restricted: str, store: Path, operator: RunningOperator
) -> None:
    ns = restricted
    k1, c1 = train_into(store, "iris", "LogisticRegression", {"C": 0.05, "max_iter": 500})
    k2, c2 = train_into(store, "iris", "LogisticRegression", {"C": 1.0, "max_iter": 500})
    log = store / "audit" / ns / "modeldeployments" / f"{MDEP}.jsonl"

    _apply(kubeconfig, ns, model_version("iris-v1", "iris", 1, k1, c1))
    _apply(kubeconfig, ns, DEPLOYMENT)
    wait_for(lambda: _logged(log) == [("Deploy", 1)], timeout=120, what="Deploy 1 in the log")
    _apply(kubeconfig, ns, model_version("iris-v2", "iris", 2, k2, c2))
    wait_for(lambda: len(_logged(log)) >= 2, timeout=120, what="the promotion in the log")
    assert "version 1 requested by" in _mlops(kubeconfig, "rollback", MDEP, "--to", "1", "-n", ns)
    wait_for(lambda: len(_logged(log)) >= 3, timeout=120, what="the rollback in the log")

    expected = [("Deploy", 1), ("Promote", 2), ("Rollback", 1)]
    assert _logged(log) == expected
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    history = get_json(kubeconfig, "-n", ns, "mdep", MDEP)["status"]["history"]
    assert [e["time"] for e in entries] == [h["time"] for h in reversed(history)]
    assert entries[2]["actor"] == "mlops-admin"
    assert len({e["id"] for e in entries}) == 3

    table = _mlops(kubeconfig, "history", MDEP, "-n", ns, "--full")
    assert [line.split()[1:3] for line in table.splitlines()[1:]] == [
        ["Rollback", "1"], ["Promote", "2"], ["Deploy", "1"]
    ]  # fmt: skip

    labels = {"model_namespace": ns, "model": "iris", "deployment": MDEP}
    assert _metric(operator, "mlops_promotions_total", **labels) == 1
    assert _metric(operator, "mlops_rollbacks_total", reason="RolledBack",
                   **labels) == 1  # fmt: skip
    # Later ticks hand nothing new to a Job: the file stays as it is. The operator moves
    # the annotation after it created the Job, in a request of its own: wait for it.
    wait_for(
        lambda: (
            get_json(kubeconfig, "-n", ns, "mdep", MDEP)["metadata"]["annotations"].get(
                "mlops.dev/audited"
            )
            == entries[-1]["id"]
        ),
        timeout=30,
        what="the audited annotation to name the rollback",
    )
    assert _logged(log) == expected
