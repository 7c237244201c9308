"""The operator SIGKILLed at random points of a canary, and restarted: the rollout resumes.

Each restart must continue from the recorded step: every step is passed once
(an Event per step), v2 is promoted exactly once, and the namespace never holds
more than the two serving Deployments.
"""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.modeldeployment.conftest import model_version, serve_first_of_two
from tests.integration.modeldeployment.test_rollout import CANARY, MDEP
from tests.integration.modeldeployment.traffic import Traffic
from tests.integration.operator.conftest import RunningOperator, start_operator
from tests.kube import get_json, kubectl

# Serial: the canary's analysis holds v2 to a p99 of 200 ms (test_rollout's CANARY).
pytestmark = pytest.mark.serial(lane=2)


def _status(kubeconfig: Path, ns: str) -> dict[str, Any]:
    return get_json(kubeconfig, "-n", ns, "mdep", MDEP).get("status") or {}


def test_sigkill_during_a_canary_resumes_where_it_was(
    kubeconfig: Path, restricted: str, store: Path, operator: RunningOperator, tmp_path: Path
) -> None:
    ns = restricted
    c1, (k2, c2) = serve_first_of_two(kubeconfig, ns, store, CANARY)
    service = get_json(kubeconfig, "-n", ns, "service", MDEP)["spec"]["clusterIP"]
    rng = random.Random(7)
    running = operator
    weights: list[int] = []
    most_deployments = 0

    def observe(seconds: float) -> bool:
        """Watch the rollout for `seconds` (or until v2 is promoted); whether it was."""
        nonlocal most_deployments
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            status = _status(kubeconfig, ns)
            challenger = status.get("challenger")
            if challenger:
                weights.append(challenger["weight"])
            elif (status.get("champion") or {}).get("version") == 2:
                return True
            items = get_json(kubeconfig, "-n", ns, "deployments")["items"]
            most_deployments = max(most_deployments, len(items))
            # Each step is held for its pause (6 s): at most ten looks a second see every one,
            # and leave the CPU to the servers whose p99 the canary judges.
            time.sleep(0.1)
        return False

    try:
        with Traffic(f"http://{service}:80", c1.parity.sample_inputs) as traffic:
            kubectl(kubeconfig, "-n", ns, "apply", "-f", "-",
                    stdin=json.dumps(model_version("iris-v2", "iris", 2, k2, c2)))  # fmt: skip
            kills = 0
            # Let the operator work a random while, then kill it without warning; again.
            while kills < 6 and not observe(rng.uniform(1.0, 6.0)):
                running.process.send_signal(signal.SIGKILL)
                running.process.wait(timeout=30)
                kills += 1
                running = start_operator(kubeconfig, ns, tmp_path / f"operator-{kills}.log")
            assert observe(300), "v2 was not promoted within 5 minutes of the last restart"
    finally:
        if running.process.poll() is None:
            running.stop()
    assert kills >= 3
    assert traffic.outcomes[200] == traffic.total, traffic.failures
    history = [(e["action"], e["version"]) for e in _status(kubeconfig, ns)["history"]]
    assert history == [("Promote", 2), ("Deploy", 1)]
    events = get_json(kubeconfig, "-n", ns, "events", "--field-selector",
                      f"involvedObject.name={MDEP}")["items"]  # fmt: skip
    # Events are best effort (one queued when the operator died is lost); none may repeat.
    passed = [e["message"] for e in events if e["reason"] == "CanaryStep"]
    assert len(passed) == len(set(passed)), passed
    # Every step was held, in order, none skipped or gone back to.
    assert weights == sorted(weights)
    assert {10, 50, 100} <= set(weights), sorted(set(weights))
    assert most_deployments <= 2
    names = sorted(
        d["metadata"]["name"] for d in get_json(kubeconfig, "-n", ns, "deployments")["items"]
    )
    assert names == ["iris-v2"] or names == ["iris-v1", "iris-v2"]
