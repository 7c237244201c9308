"""ModelDeployment on the local cluster: real servers, real Prometheus, real traffic.

One scenario, in order, as a user would live it: v1 deployed and answering as
its model card says; v2 canaried 10 → 50 → 100 % with analysis and promoted;
a slow v3 withdrawn at its first step while v2 keeps serving; a Rejected v4
never deployed; a manual rollback to v1; the history telling all of it; and the
deletion cleaning up. A bounded client predicts through the Service throughout
and no request may fail.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.modeldeployment.conftest import model_version, train_into
from tests.integration.modeldeployment.slow import slow_copy
from tests.integration.modeldeployment.traffic import Traffic, predict
from tests.integration.operator.conftest import MLOPS, RunningOperator
from tests.kube import get_json, gone, kubectl, wait_for

# Serial: the good versions must pass the canary's p99 limit of 200 ms (the slow one must
# not), a latency the suite's own load on two cores would push past the limit. Lane 1 holds
# it alone: it lasts about as long as lane 2's serial tests together.
pytestmark = pytest.mark.serial

MDEP = "iris"
CANARY = {
    "apiVersion": "mlops.dev/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": MDEP},
    "spec": {
        "modelName": "iris",
        "replicas": 2,
        "rollout": {
            "strategy": "Canary",
            "canary": {"steps": [{"weight": w, "pause": "6s"} for w in (10, 50, 100)]},
            "analysis": {
                "interval": "5s",
                "minRequests": 10,
                "failureLimit": 1,
                "maxErrorRate": 0.01,
                "maxP99LatencyMs": 200,
            },
        },
    },
}


def _apply(kubeconfig: Path, ns: str, manifest: dict[str, Any]) -> None:
    kubectl(kubeconfig, "-n", ns, "apply", "-f", "-", stdin=json.dumps(manifest))


def _status(kubeconfig: Path, ns: str) -> dict[str, Any]:
    return get_json(kubeconfig, "-n", ns, "mdep", MDEP).get("status") or {}


def _champion(kubeconfig: Path, ns: str) -> int | None:
    status = _status(kubeconfig, ns)
    if status.get("challenger"):
        return None
    return (status.get("champion") or {}).get("version")


def _validated(kubeconfig: Path, ns: str, name: str) -> str | None:
    phase = (get_json(kubeconfig, "-n", ns, "mv", name).get("status") or {}).get("phase")
    return phase if phase in ("Validated", "Rejected") else None


def _mlops(kubeconfig: Path, *args: str) -> str:
    proc = subprocess.run(
        [str(MLOPS), *args], env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _deployments(kubeconfig: Path, ns: str) -> list[str]:
    items = get_json(kubeconfig, "-n", ns, "deployments")["items"]
    return sorted(d["metadata"]["name"] for d in items)


def test_canary_promotion_withdrawal_and_rollback(
    kubeconfig: Path, restricted: str, store: Path, operator: RunningOperator
) -> None:
    ns = restricted
    k1, c1 = train_into(store, "iris", "LogisticRegression", {"C": 0.05, "max_iter": 500})
    k2, c2 = train_into(store, "iris", "LogisticRegression", {"C": 1.0, "max_iter": 500})
    c3 = slow_copy(store, k2, "models/iris/slow")
    k4, c4 = train_into(store, "iris", "DecisionTreeClassifier", {"max_depth": 1})
    gates = {"metrics": [{"metric": "accuracy", "threshold": 0.6}]}

    # v1: validated, deployed, answering exactly as its card says.
    _apply(kubeconfig, ns, model_version("iris-v1", "iris", 1, k1, c1, gates))
    assert wait_for(lambda: _validated(kubeconfig, ns, "iris-v1"), timeout=180) == "Validated"
    _apply(kubeconfig, ns, CANARY)
    kubectl(kubeconfig, "-n", ns, "wait", "--for=condition=Ready", f"mdep/{MDEP}",
            "--timeout=180s", timeout=200)  # fmt: skip
    assert _deployments(kubeconfig, ns) == ["iris-v1"]

    def ready_addresses() -> list[str] | None:
        # Each replica's address once its endpoint is ready (the slice may lag the pods, and
        # lists a pod not ready yet, which may not be listening).
        slices = get_json(kubeconfig, "-n", ns, "endpointslices",
                          "-l", f"kubernetes.io/service-name={MDEP}")["items"]  # fmt: skip
        found = [
            a
            for s in slices
            for e in s.get("endpoints") or []
            if (e.get("conditions") or {}).get("ready")
            for a in e["addresses"]
        ]
        return found if len(found) == 2 else None  # CANARY's replicas

    addresses = wait_for(ready_addresses, timeout=120, what="both replicas' ready endpoints")
    for address in addresses:
        status, body = predict(f"http://{address}:8080", c1.parity.sample_inputs)
        assert status == 200, body
        assert body["labels"] == c1.parity.sample_outputs
        assert body["model_version"] == "1"
    service = get_json(kubeconfig, "-n", ns, "service", MDEP)["spec"]["clusterIP"]
    url = f"http://{service}:80"
    rows = c1.parity.sample_inputs

    with Traffic(url, rows) as traffic:
        # v2, better: canary 10 → 50 → 100 with analysis, then promoted.
        _apply(kubeconfig, ns, model_version("iris-v2", "iris", 2, k2, c2, gates))
        wait_for(lambda: _champion(kubeconfig, ns) == 2, timeout=300, what="v2 promoted")
        history = _status(kubeconfig, ns)["history"]
        assert (history[0]["action"], history[0]["version"]) == ("Promote", 2)
        assert history[0]["evidence"]["requests"] >= 10

        def steps() -> list[str] | None:
            # Kopf posts Events from a queue of its own, after the status write: wait for them.
            events = get_json(kubeconfig, "-n", ns, "events", "--field-selector",
                              f"involvedObject.name={MDEP}")["items"]  # fmt: skip
            messages = [e["message"] for e in events if e["reason"] == "CanaryStep"]
            wanted = ("step 0 at 10%", "step 1 at 50%")
            return messages if all(any(w in m for m in messages) for w in wanted) else None

        wait_for(steps, timeout=30, what="the CanaryStep Events of steps 0 and 1")
        wait_for(lambda: _deployments(kubeconfig, ns) == ["iris-v2"], timeout=60)

        # v3, slow: withdrawn at its first step; v2 serves throughout.
        _apply(kubeconfig, ns, model_version("iris-v3", "iris", 3, "models/iris/slow", c3, gates))

        def withdrawn() -> dict[str, Any] | None:
            entry = (_status(kubeconfig, ns).get("history") or [{}])[0]
            return entry if entry.get("version") == 3 else None

        entry = wait_for(withdrawn, timeout=300, what="v3 judged")
        assert (entry["action"], entry["reason"]) == ("Abort", "AnalysisFailed")
        assert entry["evidence"]["p99LatencyMs"] > 200
        assert _champion(kubeconfig, ns) == 2
        wait_for(lambda: _deployments(kubeconfig, ns) == ["iris-v2"], timeout=60)

    assert traffic.total > 100
    assert traffic.outcomes[200] == traffic.total, traffic.failures
    assert set(traffic.versions) <= {"1", "2", "3"}
    assert traffic.versions["2"] > 0

    # A Rejected version never gets a Deployment.
    _apply(kubeconfig, ns, model_version("iris-v4", "iris", 4, k4, c4,
                                         {"metrics": [{"metric": "accuracy", "threshold": 0.9}]}))  # fmt: skip
    assert wait_for(lambda: _validated(kubeconfig, ns, "iris-v4"), timeout=180) == "Rejected"
    assert _deployments(kubeconfig, ns) == ["iris-v2"]

    # Manual rollback to v1 in one command, recorded with who asked.
    assert "version 1 requested by" in _mlops(kubeconfig, "rollback", MDEP, "--to", "1", "-n", ns)
    wait_for(lambda: _champion(kubeconfig, ns) == 1, timeout=180, what="rolled back to v1")
    wait_for(lambda: _deployments(kubeconfig, ns) == ["iris-v1"], timeout=60)
    history = _status(kubeconfig, ns)["history"]
    assert [(e["action"], e["version"]) for e in history] == [
        ("Rollback", 1), ("Abort", 3), ("Promote", 2), ("Deploy", 1)
    ]  # fmt: skip
    assert history[0]["actor"] == "mlops-admin"  # the local cluster's admin certificate
    table = _mlops(kubeconfig, "history", MDEP, "-n", ns)
    assert [line.split()[1:3] for line in table.splitlines()[1:]] == [
        ["Rollback", "1"], ["Abort", "3"], ["Promote", "2"], ["Deploy", "1"]
    ]  # fmt: skip
    promoted = history[2]["time"]
    assert _mlops(kubeconfig, "history", MDEP, "-n", ns, "--at", promoted).startswith(
        f"version 2 was live at {promoted}: Promote"
    )

    kubectl(kubeconfig, "-n", ns, "delete", "mdep", MDEP, "--wait=true", timeout=120)
    wait_for(lambda: _deployments(kubeconfig, ns) == [], timeout=120, what="Deployments gone")
    wait_for(
        lambda: gone(kubeconfig, "-n", ns, "service", MDEP),
        timeout=120, what="Service gone",
    )  # fmt: skip
