"""A canary's weight is the share of requests it answers, whatever the pods of each version.

With one replica each, the Service alone could only split by pods (50/50); the
champion's server forwards exactly the step's weight to the canary's Service.
2,000 requests through the ModelDeployment's Service at ``weight: 10`` must see the
canary answer 10 % ± 3 % of them, none failing (the figure is printed for
benchmarks/RESULTS.md).
"""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.integration.modeldeployment.conftest import model_version, serve_first_of_two
from tests.integration.modeldeployment.traffic import predict
from tests.integration.operator.conftest import RunningOperator
from tests.kube import get_json, kubectl, wait_for

REQUESTS = 2000
CANARY = {
    "apiVersion": "mlops.dev/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "iris"},
    "spec": {
        "modelName": "iris",
        "replicas": 1,
        "rollout": {
            "strategy": "Canary",
            # Long pauses and intervals: the step holds while it is measured here.
            "canary": {"steps": [{"weight": 10, "pause": "1h"}, {"weight": 100, "pause": "1h"}]},
            "analysis": {"interval": "1h"},
        },
    },
}


def _status(kubeconfig: Path, ns: str) -> dict[str, Any]:
    return get_json(kubeconfig, "-n", ns, "mdep", "iris").get("status") or {}


def _pods(kubeconfig: Path, ns: str, version: int) -> int:
    """Pods of `version`, a terminating one included: it keeps answering through its drain
    while its endpoint goes, and as the champion started before the step it never forwards
    (the split lives in the pod's environment), so it would count against the canary."""
    return len(
        get_json(kubeconfig, "-n", ns, "pods", "-l", f"mlops.dev/version={version}")["items"]
    )


def test_a_canary_at_weight_10_answers_10_percent_with_one_replica_each(
    kubeconfig: Path, restricted: str, store: Path, operator: RunningOperator
) -> None:
    ns = restricted
    c1, (k2, c2) = serve_first_of_two(kubeconfig, ns, store, CANARY)
    kubectl(kubeconfig, "-n", ns, "apply", "-f", "-",
            stdin=json.dumps(model_version("iris-v2", "iris", 2, k2, c2)))  # fmt: skip

    def stepping() -> dict[str, Any] | None:
        challenger = _status(kubeconfig, ns).get("challenger") or {}
        # `since` is set once the forwarding champion and the canary both serve the step.
        ready = challenger.get("phase") == "Canary" and challenger.get("since")
        return challenger if ready else None

    challenger = wait_for(stepping, timeout=300, what="the canary at its first step")
    assert (challenger["version"], challenger["weight"]) == (2, 10)
    wait_for(lambda: _pods(kubeconfig, ns, 1) == 1, timeout=120,
             what="one champion pod, the one of the step (the one before it gone)")  # fmt: skip
    assert _pods(kubeconfig, ns, 2) == 1
    service = get_json(kubeconfig, "-n", ns, "service", "iris")["spec"]["clusterIP"]
    rows = c1.parity.sample_inputs

    def one(index: int) -> tuple[int, str]:
        status, body = predict(f"http://{service}:80", [rows[index % len(rows)]])
        return status, str(body.get("model_version"))

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(one, range(REQUESTS)))

    outcomes = Counter(status for status, _ in answers)
    versions = Counter(version for status, version in answers if status == 200)
    share = versions["2"] / REQUESTS
    print(f"canary split at weight 10, one replica each: {versions['2']}/{REQUESTS} = {share:.2%}")
    assert outcomes == {200: REQUESTS}, outcomes
    assert set(versions) == {"1", "2"}
    assert 0.07 <= share <= 0.13, versions
