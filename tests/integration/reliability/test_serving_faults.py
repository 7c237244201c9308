"""Serving faults: one of two serving pods killed under load, the Service answering throughout.

A ModelDeployment serves a really trained iris model with two replicas. Client
threads predict through the Service's ClusterIP (kube-proxy, nftables) while
one serving pod is killed:

- **deleted** (``kubectl delete pod``): the pod is marked terminating, the
  EndpointSlice controller drops it and the server gets SIGTERM at the same
  time; it keeps answering while not ready for its drain delay, then closes.
  Zero requests may fail, and the ReplicaSet's replacement becomes Ready and
  answers predictions.
- **SIGKILLed** on the node (every process of the pod's network namespace,
  what an out-of-memory kill of the container looks like): nothing drains.
  Requests in flight on the killed process, and new connections sent to its
  address until the endpoint is dropped everywhere, fail with a reset or a
  refusal, as on any Kubernetes. The Service keeps answering from the other
  replica, and the restarted container serves again.

A request that got no HTTP answer is retried (``/predict`` is idempotent): at
once, then with Envoy's back-off. Its first attempt is what a plain client
sees, its second what a client retrying once sees, its last what a client
retrying for up to ``RETRY_BUDGET`` seconds sees. Through a ClusterIP a retry
is balanced afresh and may meet the dead endpoint again (Envoy, Istio and
ingress-nginx pick endpoints themselves and retry on another one), so one
immediate retry is not enough. Asserted for the kill: no HTTP error, no failure
for the backing-off client, and plain clients failing only within the drain
delay after the kill (the time the servers' drain assumes endpoint removal
takes).

``MLOPS_SERVING_FAULT_CLIENTS`` (default 4) sets the client threads,
``MLOPS_SERVING_FAULT_ROUNDS`` (default 1) how many times both kills are done;
``MLOPS_RELIABILITY_REPORT`` names a file for the figures
(``benchmarks/serving/bench_serving_faults.py`` runs it longer).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import pytest

from mlops_operator.localcluster.network import PodNetwork
from mlops_operator.resources.modeldeployment import DRAIN_SECONDS, SERVER_PORT
from tests.integration.modeldeployment.conftest import model_version, train_into
from tests.integration.modeldeployment.traffic import predict, wait_until_routed
from tests.integration.operator.conftest import RunningOperator, http_get
from tests.kube import get_json, kubectl, wait_for

# Serial: plain clients may fail only within the drain delay after a kill, a deadline the
# suite's own load on the node would stretch (kube-proxy and the servers share two cores).
pytestmark = [pytest.mark.reliability, pytest.mark.serial(lane=2)]

CLIENTS = int(os.environ.get("MLOPS_SERVING_FAULT_CLIENTS", "4"))
ROUNDS = int(os.environ.get("MLOPS_SERVING_FAULT_ROUNDS", "1"))
RETRY_BUDGET = 10.0
BACKOFF_BASE, BACKOFF_CAP = 0.025, 0.25
# One connection per request: faster than this, the client would run out of ephemeral ports
# towards the one ClusterIP within TIME_WAIT's 60 s (28,000 ports by default).
MAX_RATE = 250.0
MDEP = "iris"
SELECTOR = f"mlops.dev/deployment={MDEP}"
DEPLOYMENT = {
    "apiVersion": "mlops.dev/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": MDEP},
    "spec": {"modelName": "iris", "replicas": 2},
}


def _kind(error: str) -> str:
    """A connection error in a word: refused, reset, closed (no response), timed out."""
    kinds = ("refused", "reset", "closed", "timed out")
    return next((k for k in kinds if k in error.lower()), error[:80])


@dataclass(frozen=True)
class Outcome:
    """One request: when it started, each attempt's HTTP status (0: no answer), its time."""

    started: float
    statuses: tuple[int, ...]
    seconds: float
    first_error: str


@dataclass
class Load:
    """`clients` threads predicting through `url` until stopped, at most `MAX_RATE` a second.

    A request that got no HTTP answer (refused, reset, timed out) is retried at once,
    then with Envoy's back-off (25 ms doubling to 250 ms) for up to `RETRY_BUDGET`
    seconds; an HTTP error is never retried.
    """

    url: str
    rows: list[Any]
    clients: int = CLIENTS
    max_requests: int = 5_000
    max_seconds: float = 120
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _send(self, row: list[Any]) -> Outcome:
        started = time.monotonic()
        statuses: list[int] = []
        errors: list[str] = []
        delay = 0.0
        while True:
            status, body = predict(self.url, row, timeout=5)
            statuses.append(status)
            if status != 0 or time.monotonic() - started > RETRY_BUDGET:
                break
            errors.append(_kind(str(body.get("error"))))
            # The client's back-off between attempts, not synchronisation.
            time.sleep(delay)
            delay = min(max(2 * delay, BACKOFF_BASE), BACKOFF_CAP)
        return Outcome(started, tuple(statuses), time.monotonic() - started, "".join(errors[:1]))

    def _run(self, client: int) -> None:
        start = time.monotonic()
        every = self.clients / MAX_RATE
        for index in range(self.max_requests):
            # Pacing, not synchronisation: the load stays bounded whatever the servers do.
            if self._stop.wait(max(0.0, start + index * every - time.monotonic())):
                return
            if time.monotonic() - start > self.max_seconds:
                return
            row = [self.rows[(client + index) % len(self.rows)]]
            # list.append is atomic: the threads need no lock to record.
            self.outcomes.append(self._send(row))

    def __enter__(self) -> Self:
        self._threads = [
            threading.Thread(target=self._run, args=(c,), daemon=True) for c in range(self.clients)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def answered(self, since: float, until: float = float("inf")) -> int:
        """Requests started between `since` and `until` and answered 200 at the first attempt."""
        return sum(
            1 for o in list(self.outcomes) if since <= o.started <= until and o.statuses[0] == 200
        )

    def figures(self, kill: float) -> dict[str, Any]:
        """What a plain, a once-retrying and a backing-off client saw around the `kill`."""
        outcomes = list(self.outcomes)
        plain = [o for o in outcomes if o.statuses[0] != 200]
        latencies = sorted(o.seconds for o in outcomes if o.statuses[-1] == 200)
        return {
            # Wall-clock, to find the kill in the cluster's logs.
            "kill_time": time.strftime(
                "%H:%M:%S", time.localtime(time.time() - (time.monotonic() - kill))
            ),
            "sent": len(outcomes),
            "failed_plain": len(plain),
            "failed_one_retry": sum(1 for o in outcomes if o.statuses[:2][-1] != 200),
            "failed_with_backoff": sum(1 for o in outcomes if o.statuses[-1] != 200),
            "http_errors": sum(1 for o in outcomes for s in o.statuses if s not in (0, 200)),
            "most_attempts": max((len(o.statuses) for o in outcomes), default=0),
            "failures_s": [round(o.started - kill, 2) for o in plain[:20]],
            "failures_until_s": round(max(o.started for o in plain) - kill, 2) if plain else None,
            "plain_errors": dict(Counter(o.first_error for o in plain)),
            "p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 1)
            if latencies
            else None,
        }


def _pods(kubeconfig: Path, ns: str) -> dict[str, dict[str, Any]]:
    found = get_json(kubeconfig, "-n", ns, "pods", "-l", SELECTOR)["items"]
    return {p["metadata"]["name"]: p for p in found}


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return "deletionTimestamp" not in pod["metadata"] and any(
        c["type"] == "Ready" and c["status"] == "True" for c in conditions
    )


def _ready_pods(kubeconfig: Path, ns: str) -> dict[str, dict[str, Any]]:
    return {name: pod for name, pod in _pods(kubeconfig, ns).items() if _ready(pod)}


def _two_ready_pods(kubeconfig: Path, ns: str) -> dict[str, dict[str, Any]]:
    def two() -> dict[str, dict[str, Any]] | None:
        ready = _ready_pods(kubeconfig, ns)
        return ready if len(ready) == 2 else None

    return wait_for(two, timeout=120, what="two ready serving pods")


def _predictions_served(pod: dict[str, Any]) -> float:
    """Predictions the pod's server process answered so far, from its own /metrics."""
    answer = http_get(f"http://{pod['status']['podIP']}:{SERVER_PORT}/metrics")
    if answer is None or answer[0] != 200:
        return 0.0
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in answer[1].splitlines()
        if line.startswith("mlops_requests_total{")
        and 'endpoint="predict"' in line
        and 'outcome="ok"' in line
    )


def _kill_containers(pod: dict[str, Any]) -> set[int]:
    """SIGKILL every process in the pod's network namespace on the local node; their PIDs."""
    netns = PodNetwork.names(pod["metadata"]["uid"])[0]
    listed = subprocess.run(
        ["ip", "netns", "pids", netns], capture_output=True, text=True, check=True, timeout=30
    )
    pids = {int(pid) for pid in listed.stdout.split()}
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    return pids


def _wait_for_traffic(load: Load, since: float) -> None:
    wait_for(lambda: load.answered(since) >= 20, timeout=60, what="answers through the Service")


def _delete_a_pod(kubeconfig: Path, ns: str, load: Load) -> float:
    """Delete one of the two ready pods; return once its replacement answers and it is gone."""
    _wait_for_traffic(load, time.monotonic())
    before = _two_ready_pods(kubeconfig, ns)
    victim = min(before)
    kill = time.monotonic()
    kubectl(kubeconfig, "-n", ns, "delete", "pod", victim, "--wait=false")
    replacement = wait_for(
        lambda: next((p for n, p in _ready_pods(kubeconfig, ns).items() if n not in before), None),
        timeout=120,
        what="the ReplicaSet's replacement Ready",
    )
    wait_for(
        lambda: _predictions_served(replacement) > 0, timeout=60, what="the replacement answering"
    )
    wait_for(lambda: victim not in _pods(kubeconfig, ns), timeout=60, what=f"{victim} gone")
    _wait_for_traffic(load, time.monotonic())
    return kill


def _sigkill_a_pod(kubeconfig: Path, ns: str, load: Load) -> float:
    """SIGKILL one pod's server; return once its restarted container answers again."""
    _wait_for_traffic(load, time.monotonic())
    pods = _two_ready_pods(kubeconfig, ns)
    victim = pods[min(pods)]
    name = victim["metadata"]["name"]
    kill = time.monotonic()
    assert _kill_containers(victim)

    def restarted() -> dict[str, Any] | None:
        pod = _pods(kubeconfig, ns).get(name)
        statuses = ((pod or {}).get("status") or {}).get("containerStatuses") or [{}]
        return pod if pod and _ready(pod) and statuses[0].get("restartCount", 0) >= 1 else None

    back = wait_for(restarted, timeout=120, what=f"{name} restarted and Ready")
    back_at = time.monotonic()
    # Meanwhile the other replica answered through the Service.
    assert load.answered(kill, back_at) > 0
    wait_for(lambda: _predictions_served(back) > 0, timeout=60, what=f"{name} answering again")
    _wait_for_traffic(load, time.monotonic())
    return kill


def test_a_serving_pod_killed_under_load(
    kubeconfig: Path, restricted: str, store: Path, operator: RunningOperator
) -> None:
    ns = restricted
    key, card = train_into(store, "iris", "LogisticRegression", {"max_iter": 500})
    kubectl(kubeconfig, "-n", ns, "apply", "-f", "-",
            stdin=json.dumps(model_version("iris-v1", "iris", 1, key, card)))  # fmt: skip
    kubectl(kubeconfig, "-n", ns, "apply", "-f", "-", stdin=json.dumps(DEPLOYMENT))
    kubectl(kubeconfig, "-n", ns, "wait", "--for=condition=Ready", f"mdep/{MDEP}",
            "--timeout=240s", timeout=260)  # fmt: skip
    service = get_json(kubeconfig, "-n", ns, "service", MDEP)["spec"]["clusterIP"]
    url = f"http://{service}:80"
    rows = card.parity.sample_inputs
    # Every request counts from the first: the Service must have its endpoints (Ready is
    # the pods', kube-proxy's rules follow at its next sync).
    wait_until_routed(url)
    figures: dict[str, list[dict[str, Any]]] = {"deleted": [], "sigkilled": []}
    for _ in range(ROUNDS):
        with Load(url, rows) as load:
            kill = _delete_a_pod(kubeconfig, ns, load)
        figures["deleted"].append(load.figures(kill))
        with Load(url, rows) as load:
            kill = _sigkill_a_pod(kubeconfig, ns, load)
        figures["sigkilled"].append(load.figures(kill))
    report = os.environ.get("MLOPS_RELIABILITY_REPORT")
    if report:
        Path(report).write_text(json.dumps(figures))
    for deleted in figures["deleted"]:
        # Draining: the deleted pod answered until its endpoint was gone everywhere.
        assert (deleted["failed_plain"], deleted["http_errors"]) == (0, 0), json.dumps(deleted)
    for killed in figures["sigkilled"]:
        # Never an HTTP error; a backing-off client saw no failure at all.
        assert (killed["failed_with_backoff"], killed["http_errors"]) == (0, 0), json.dumps(killed)
        # Plain clients failed only until the endpoint was dropped everywhere, which the
        # servers' drain delay assumes takes less than DRAIN_SECONDS.
        assert (killed["failures_until_s"] or 0) < DRAIN_SECONDS, json.dumps(killed)
