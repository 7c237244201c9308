"""Control-plane faults: kube-apiserver or etcd stopped and restarted mid-reconciliation.

On a private control plane (never the shared cluster), a burst of suspended
TrainingJobs is applied and the component is stopped at once, while the
operator is still working through them. While it is down the operator keeps
running and its liveness probe answers 500 (the API server is not ready);
once it is back the probe answers 200 again, every TrainingJob of the burst
converges to ``Suspended`` with exactly one Job, and objects created or
changed after the outage are reconciled: the watches resumed by themselves.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_operator.localcluster.cluster import LocalCluster
from mlops_operator.localcluster.processes import ManagedProcess
from tests.integration.operator.conftest import RunningOperator, http_get, start_operator
from tests.integration.trainingjob.conftest import items, training_job
from tests.kube import get_json, kubectl, wait_for

pytestmark = pytest.mark.reliability

BURST = 12
OUTAGE_TIMEOUT = 90
RECOVERY_TIMEOUT = 180


def _suspended(config: Path, namespace: str) -> set[str]:
    """The TrainingJobs whose status says they are held (the operator reconciled them)."""
    held = set()
    for obj in items(config, namespace, "trainingjobs"):
        conditions = (obj.get("status") or {}).get("conditions") or []
        if any(c["type"] == "Suspended" and c["status"] == "True" for c in conditions):
            held.add(obj["metadata"]["name"])
    return held


def _liveness(running: RunningOperator) -> int | None:
    answer = http_get(running.liveness_url)
    return None if answer is None else answer[0]


@pytest.mark.parametrize("component", ["kube-apiserver", "etcd"])
def test_the_operator_rides_out_a_control_plane_restart(
    component: str, private_cluster: LocalCluster, private_namespace: str, tmp_path: Path
) -> None:
    config, namespace = private_cluster.layout.admin_kubeconfig, private_namespace
    running = start_operator(config, namespace, tmp_path / "operator.log")
    try:
        burst = [training_job(namespace, f"held-{i}", suspend=True) for i in range(BURST)]
        kubectl(
            config,
            "apply",
            "-f",
            "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": burst}),
        )
        assert ManagedProcess(component, private_cluster.layout.root).stop()

        wait_for(
            lambda: _liveness(running) == 500,
            timeout=OUTAGE_TIMEOUT,
            what=f"the liveness probe to report the stopped {component}",
        )
        assert running.process.poll() is None, "the operator exited during the outage"
        assert "the API server is not ready" in running.log.read_text()

        private_cluster.up()
        wait_for(
            lambda: _liveness(running) == 200,
            timeout=RECOVERY_TIMEOUT,
            what="the liveness probe to recover",
        )
        kubectl(
            config,
            "apply",
            "-f",
            "-",
            stdin=json.dumps(training_job(namespace, "after", suspend=True)),
        )
        expected = {doc["metadata"]["name"] for doc in burst} | {"after"}
        wait_for(
            lambda: _suspended(config, namespace) == expected,
            timeout=RECOVERY_TIMEOUT,
            what="every TrainingJob to be reconciled after the restart",
        )
        jobs = [j["metadata"]["name"] for j in items(config, namespace, "jobs")]
        assert sorted(jobs) == sorted(expected), "not exactly one Job per TrainingJob"

        kubectl(
            config,
            "patch",
            "trainingjob",
            "held-0",
            "-n",
            namespace,
            "--type=merge",
            "-p",
            '{"spec": {"suspend": false}}',
        )
        wait_for(
            lambda: get_json(config, "job", "held-0", "-n", namespace)["spec"]["suspend"] is False,
            timeout=RECOVERY_TIMEOUT,
            what="the spec change after the outage to reach the Job",
        )
        assert running.process.poll() is None
    finally:
        if running.process.poll() is None:
            running.stop()
