"""Where the operator sends requests: only to Prometheus servers the platform allowed, and to pods
at URLs it builds from a pod IP, an integer port and a plain path.

Three listeners on the operator's loopback count what reaches them: an allowed Prometheus, a
Prometheus a DriftPolicy names but the operator's allow-list does not, and a trap that a
serving pod's annotations try to redirect the scrape to (``prometheus.io/port: <trap>@127.0.0.1:<trap>``,
which a naive ``http://{podIP}:{port}{path}`` turns into a request to the trap). The policy on
the foreign Prometheus is halted with PrometheusNotAllowed (condition and Event), the pod is
refused and named in a ScrapeTargetRefused Event, and neither the foreign Prometheus nor the
trap receives anything, while the allowed Prometheus is queried.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mlops_operator.api.pods import DEFAULT_WORKLOAD_SECURITY
from mlops_operator.resources.common import (
    restricted_container_security_context,
    restricted_pod_security_context,
)
from tests.integration.driftpolicy.conftest import condition, policy, status_of
from tests.integration.operator.conftest import operator_for_test
from tests.kube import get_json, kubectl, wait_for

EMPTY = json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}}).encode()


class _Listener:
    """An HTTP server on loopback that counts requests and answers Prometheus' empty vector."""

    def __init__(self) -> None:
        self.requests = 0
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                listener.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(EMPTY)))
                self.end_headers()
                self.wfile.write(EMPTY)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.port = self.server.server_address[1]


@contextmanager
def _listening(count: int) -> Iterator[list[_Listener]]:
    listeners = [_Listener() for _ in range(count)]
    threads = [threading.Thread(target=l.server.serve_forever, daemon=True) for l in listeners]
    for thread in threads:
        thread.start()
    try:
        yield listeners
    finally:
        for listener in listeners:
            listener.server.shutdown()
            listener.server.server_close()


def _sneaky_pod(namespace: str, trap: int) -> dict[str, Any]:
    """A pod labelled like a serving pod, whose annotations aim the scrape at the trap."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "sneaky",
            "namespace": namespace,
            "labels": {"mlops.dev/deployment": "iris"},
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": f"{trap}@127.0.0.1:{trap}",
                "prometheus.io/path": "/metrics",
            },
        },
        "spec": {
            "securityContext": restricted_pod_security_context(DEFAULT_WORKLOAD_SECURITY),
            "containers": [{
                "name": "sleep",
                "image": "mlops-operator/python",
                "command": ["python", "-c", "import time; time.sleep(3600)"],
                "securityContext": restricted_container_security_context(),
            }],
        },
    }  # fmt: skip


def _events(kubeconfig: Path, namespace: str, name: str, reason: str) -> list[str]:
    listing = get_json(kubeconfig, "events", "-n", namespace)["items"]
    return [
        e["message"]
        for e in listing
        if e["involvedObject"].get("name") == name and e["reason"] == reason
    ]


def test_only_allowed_prometheus_and_valid_scrape_targets_are_fetched(
    kubeconfig: Path,
    crds: list[Path],
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with _listening(3) as (allowed, foreign, trap):
        monkeypatch.setenv("MLOPS_PROMETHEUS_ALLOWED_URLS", allowed.url)
        monkeypatch.delenv("MLOPS_PROMETHEUS_URL", raising=False)
        with operator_for_test(kubeconfig, namespace, tmp_path / "operator.log"):
            mdep = {"apiVersion": "mlops.dev/v1alpha1", "kind": "ModelDeployment",
                    "metadata": {"name": "iris", "namespace": namespace},
                    "spec": {"modelName": "iris"}}  # fmt: skip
            kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(mdep))
            kubectl(
                kubeconfig, "apply", "-f", "-", stdin=json.dumps(_sneaky_pod(namespace, trap.port))
            )
            wait_for(
                lambda: get_json(kubeconfig, "pod", "sneaky", "-n", namespace)["status"].get("podIP"),
                timeout=120, what="the sneaky pod to run",
            )  # fmt: skip
            documents = [
                policy(namespace, "scraping", {"custom": [{"name": "x", "query": "vector(1)", "threshold": 2}]}),
                policy(namespace, "foreign", {"custom": [{"name": "x", "query": "vector(1)", "threshold": 2}]},
                       prometheus={"url": foreign.url}),
                policy(namespace, "allowed", {"custom": [{"name": "x", "query": "vector(1)", "threshold": 2}]},
                       prometheus={"url": allowed.url + "/"}),
            ]  # fmt: skip
            for document in documents:
                kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(document))

            refusals = wait_for(
                lambda: _events(kubeconfig, namespace, "scraping", "ScrapeTargetRefused"),
                timeout=120, what="the refused scrape target's Event",
            )  # fmt: skip
            assert any(
                "pod sneaky not scraped" in m and "is not a port number" in m for m in refusals
            ), refusals
            halted = wait_for(
                lambda: (c := condition(status_of(kubeconfig, namespace, "foreign"), "Ready"))
                and c.get("reason") == "PrometheusNotAllowed" and c,
                timeout=120, what="the foreign Prometheus refused",
            )  # fmt: skip
            assert halted["status"] == "False"
            assert (
                f"{foreign.url!r} is not in the operator's allow-list ({allowed.url})"
                in (halted["message"])
            )
            # The Event is posted after the status is written (Kopf queues it): wait for it.
            wait_for(
                lambda: _events(kubeconfig, namespace, "foreign", "PrometheusNotAllowed"),
                timeout=60, what="the foreign Prometheus's refusal Event",
            )  # fmt: skip
            # The allowed one is queried, evaluation after evaluation; meanwhile the others
            # have been evaluated (and refused) as often.
            wait_for(lambda: allowed.requests >= 10, timeout=120, what="queries of the allowed URL")
            scraping = status_of(kubeconfig, namespace, "scraping")
            assert condition(scraping, "SourceReachable")["status"] == "False"
    assert (foreign.requests, trap.requests) == (0, 0)
