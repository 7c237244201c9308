"""Shadow rollout: the challenger answers a mirror of live traffic, callers only ever see the champion."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.integration.modeldeployment.conftest import model_version, serve_first_of_two
from tests.integration.modeldeployment.traffic import Traffic
from tests.integration.operator.conftest import RunningOperator
from tests.kube import get_json, gone, kubectl, wait_for

SHADOW = {
    "apiVersion": "mlops.dev/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "iris"},
    "spec": {
        "modelName": "iris",
        "replicas": 1,
        "rollout": {
            "strategy": "Shadow",
            "shadow": {"duration": "12s"},
            "analysis": {"minRequests": 10, "failureLimit": 1, "maxErrorRate": 0.01},
        },
    },
}


def _status(kubeconfig: Path, ns: str) -> dict[str, Any]:
    return get_json(kubeconfig, "-n", ns, "mdep", "iris").get("status") or {}


def test_shadow_measures_agreement_without_changing_responses(
    kubeconfig: Path, restricted: str, store: Path, operator: RunningOperator
) -> None:
    ns = restricted
    c1, (k2, c2) = serve_first_of_two(kubeconfig, ns, store, SHADOW)
    service = get_json(kubeconfig, "-n", ns, "service", "iris")["spec"]["clusterIP"]

    def shadow_decided() -> dict[str, Any] | None:
        entry = (_status(kubeconfig, ns).get("history") or [{}])[0]
        return entry if entry.get("version") == 2 else None

    with Traffic(f"http://{service}:80", c1.parity.sample_inputs) as traffic:
        kubectl(kubeconfig, "-n", ns, "apply", "-f", "-",
                stdin=json.dumps(model_version("iris-v2", "iris", 2, k2, c2)))  # fmt: skip
        wait_for(
            lambda: (_status(kubeconfig, ns).get("challenger") or {}).get("phase") == "Shadowing",
            timeout=180, what="shadowing",
        )  # fmt: skip
        entry = wait_for(shadow_decided, timeout=300, what="the shadow judged")
    # While shadowed, every caller was answered by the champion.
    assert traffic.outcomes[200] == traffic.total > 20, traffic.failures
    assert set(traffic.versions) == {"1"}
    assert (entry["action"], entry["reason"]) == ("Promote", "Promoted")
    evidence = entry["evidence"]
    assert evidence["requests"] >= 10  # mirrored: the Service never routed to v2
    assert evidence["errorRate"] == 0
    assert 0.5 <= evidence["agreement"] <= 1.0
    assert "champion.requests" in evidence
    wait_for(lambda: (_status(kubeconfig, ns).get("champion") or {}).get("version") == 2,
             timeout=180, what="v2 serving")  # fmt: skip
    # The old champion goes with its own Service; the new one's stays.
    wait_for(lambda: gone(kubeconfig, "-n", ns, "service", "iris-v1"),
             timeout=60, what="v1's Service removed")  # fmt: skip
    kubectl(kubeconfig, "-n", ns, "get", "service", "iris-v2")
