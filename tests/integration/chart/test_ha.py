"""`helm install` with two operator replicas: one leads, and a killed leader is replaced in time.

Aspects: with `operator.replicas=2` both pods become Ready, the release's Lease names one of
them and exactly that one reports `leader` on /readyz (the other `standby`); `helm test`
passes; the iris TrainingJob and its ModelDeployment are applied and the leader's process is
killed (SIGKILL, as a crash or an OOM kill would: no release of the Lease); the standby holds
the Lease within the release's lease and retry times (shortened here, so they are shown to
be honoured) and a margin; the loop completes under the new leader with exactly one trainer Job,
one ModelVersion and one serving Deployment (two active replicas would race for them); the
killed pod restarts and stands by.
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_operator.resources.modeldeployment import SERVER_COMPONENT
from tests.integration.chart.conftest import CHART, Helm
from tests.integration.chart.test_install import _trained, release, watched
from tests.kube import find_json, get_json, kubectl, wait_for
from tests.unit.chart.rendered import REPO

__all__ = ["release", "watched"]  # fixtures shared with test_install

# Serial: the takeover is a deadline, which a machine busy with the parallel phase
# could stretch (the standby's renewal loop and the test's polling both need the CPU).
pytestmark = pytest.mark.serial(lane=2)

# The release's leaderElection timings: a killed leader's Lease expires after LEASE_SECONDS
# and the standby retries every RETRY_SECONDS (the chart's defaults, 15 and 2, would add seven
# seconds of waiting to the serial phase and could not show the values are used).
LEASE_SECONDS, RENEW_SECONDS, RETRY_SECONDS = 8, 6, 1
TAKEOVER_SECONDS = LEASE_SECONDS + RETRY_SECONDS + 3
EXAMPLES = REPO / "manifests" / "examples" / "iris"


def _pods(kubeconfig: Path, namespace: str) -> list[dict[str, Any]]:
    found = get_json(
        kubeconfig, "pods", "-n", namespace, "-l", "app.kubernetes.io/component=operator"
    )
    return [p for p in found["items"] if p["metadata"].get("deletionTimestamp") is None]


def _ready(pod: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in pod.get("status", {}).get("conditions", [])
    )


def _role(pod: dict[str, Any]) -> str | None:
    """What the pod's /readyz says it is (`leader`, `standby`), straight from its pod IP."""
    url = f"http://{pod['status']['podIP']}:8081/readyz"
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            body = answer.read().decode()
    except OSError:
        return None
    return body.removeprefix("ready (").split(")", 1)[0] if body.startswith("ready (") else None


def _holder(kubeconfig: Path, namespace: str, lease: str) -> str | None:
    """The pod whose process holds the Lease (its identity is ``<pod>_<random>``)."""
    found = find_json(kubeconfig, "lease", lease, "-n", namespace)
    if found is None:
        return None
    holder: str | None = found["spec"].get("holderIdentity")
    return holder.rpartition("_")[0] if holder else None


def _operator_process(pod: str) -> int:
    """The pid of the local node's process running the operator container of `pod`."""
    needle = f"POD_ID={pod}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if needle in environ and b"operator" in command and b"run" in command:
            return int(entry.name)
    raise AssertionError(f"no operator process of pod {pod} on this machine")


def _apply_example(kubeconfig: Path, namespace: str, name: str) -> None:
    doc = yaml.safe_load((EXAMPLES / name).read_text())
    doc["metadata"]["namespace"] = namespace
    kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(doc))


def _serving(kubeconfig: Path, namespace: str) -> dict[str, Any] | None:
    mdep = get_json(kubeconfig, "modeldeployment", "iris", "-n", namespace)
    conditions = {c["type"]: c["status"] for c in (mdep.get("status") or {}).get("conditions", [])}
    return mdep if conditions.get("Ready") == "True" else None


@pytest.mark.timeout(1500)
def test_two_replicas_one_leader_and_a_takeover_without_duplicates(
    helm: Helm, kubeconfig: Path, namespace: str, watched: str, release: str
) -> None:
    helm(
        "install",
        release,
        str(CHART),
        "-n",
        namespace,
        "--set",
        "crds.enabled=false",  # the session's CRDs are shared with other tests
        "--set",
        f"operator.watchNamespaces={{{watched}}}",
        "--set",
        "operator.replicas=2",
        "--set",
        "operator.logFormat=text",
        "--set",
        f"operator.leaderElection.leaseSeconds={LEASE_SECONDS}",
        "--set",
        f"operator.leaderElection.renewSeconds={RENEW_SECONDS}",
        "--set",
        f"operator.leaderElection.retrySeconds={RETRY_SECONDS}",
        "--wait",
        "--timeout",
        "4m",
        kubeconfig=kubeconfig,
    )
    pods = wait_for(
        lambda: (
            (found := _pods(kubeconfig, namespace))
            and len(found) == 2
            and all(_ready(p) for p in found)
            and found
        ),
        timeout=240,
        what="two Ready operator pods",
    )
    leader = wait_for(
        lambda: _holder(kubeconfig, namespace, release), timeout=60, what="a Lease holder"
    )
    names = {p["metadata"]["name"] for p in pods}
    assert leader in names
    (standby,) = names - {leader}
    roles = {p["metadata"]["name"]: _role(p) for p in pods}
    assert roles == {leader: "leader", standby: "standby"}

    tested = helm("test", release, "-n", namespace, "--timeout", "3m", kubeconfig=kubeconfig)
    assert "Phase:          Succeeded" in tested.stdout, tested.stdout

    _apply_example(kubeconfig, watched, "modeldeployment.yaml")
    _apply_example(kubeconfig, watched, "trainingjob.yaml")
    os.kill(_operator_process(leader), signal.SIGKILL)
    killed_at = time.monotonic()
    wait_for(
        lambda: _holder(kubeconfig, namespace, release) == standby,
        timeout=TAKEOVER_SECONDS + 10,
        interval=0.2,
        what="the standby to take the Lease",
    )
    took = time.monotonic() - killed_at
    assert took < TAKEOVER_SECONDS, f"the standby led {took:.1f}s after the leader was killed"
    # Not before the Lease ran out: the holder renewed at most RETRY_SECONDS before the kill.
    assert took > LEASE_SECONDS - RETRY_SECONDS - 0.5, f"the standby led after only {took:.1f}s"

    job = wait_for(
        lambda: _trained(kubeconfig, watched, "iris-initial"),
        timeout=600,
        what="the new leader to train the TrainingJob into a ModelVersion",
    )
    assert job["status"]["modelVersion"] == "iris-v1"
    wait_for(lambda: _serving(kubeconfig, watched), timeout=600, what="iris to serve")

    trainer_jobs = get_json(
        kubeconfig, "jobs", "-n", watched, "-l", "mlops.dev/training-job=iris-initial"
    )["items"]
    assert len(trainer_jobs) == 1, [j["metadata"]["name"] for j in trainer_jobs]
    versions = get_json(kubeconfig, "modelversions", "-n", watched)["items"]
    assert [v["metadata"]["name"] for v in versions] == ["iris-v1"]
    # The inference servers (the label evaluator, a Deployment of its own, is not one).
    servers = get_json(
        kubeconfig,
        "deployments",
        "-n",
        watched,
        "-l",
        f"mlops.dev/model=iris,app.kubernetes.io/component={SERVER_COMPONENT}",
    )["items"]
    assert len(servers) == 1, [d["metadata"]["name"] for d in servers]

    restarted = wait_for(
        lambda: next(
            (
                p
                for p in _pods(kubeconfig, namespace)
                if p["metadata"]["name"] == leader and _ready(p) and _role(p) == "standby"
            ),
            None,
        ),
        timeout=120,
        what="the killed replica to come back as a standby",
    )
    assert restarted["status"]["containerStatuses"][0]["restartCount"] >= 1
    assert _holder(kubeconfig, namespace, release) == standby
    print(f"takeover: the standby held the Lease {took:.1f}s after the leader was killed")
