"""The rollout tests' client counts from the moment the Service routes, not from Ready.

A ClusterIP refuses connections until kube-proxy has put a ready endpoint in its rules,
which can be a moment after the ModelDeployment (its pod) is Ready: `test_resume` counted
a refused request of that moment as a request lost by the rollout. Here a loopback socket
bound but not yet listening refuses the same way, and starts serving half a second later.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.integration.modeldeployment.traffic import Traffic, wait_until_routed
from tests.kube import wait_for

REFUSING_SECONDS = 0.5


class _Server(BaseHTTPRequestHandler):
    """The inference server's two endpoints the client uses."""

    def do_GET(self) -> None:
        self._answer({"ready": True} if self.path == "/v2/health/ready" else {})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self._answer({"labels": ["setosa"], "model_version": "1", "request_id": "r"})

    def _answer(self, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: object) -> None:
        pass


@contextmanager
def routed_after(seconds: float | None) -> Iterator[str]:
    """A URL refused (nothing listens on its bound port) until `seconds`, then served."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = ThreadingHTTPServer(sock.getsockname(), _Server, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    cancelled, serving = threading.Event(), threading.Event()

    def serve() -> None:
        if seconds is None or cancelled.wait(seconds):
            return
        server.server_activate()
        serving.set()
        server.serve_forever(poll_interval=0.05)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        cancelled.set()
        if serving.is_set():
            server.shutdown()
        thread.join()
        server.server_close()


def test_traffic_counts_only_requests_sent_once_the_service_routes() -> None:
    rows = [[5.1, 3.5, 1.4, 0.2]]
    with routed_after(REFUSING_SECONDS) as url, Traffic(url, rows, interval=0.01) as traffic:
        wait_for(lambda: traffic.total >= 20, timeout=30, what="20 requests")
    # Started at once, the client counted a refusal every 10 ms for half a second.
    assert traffic.failures == []
    assert traffic.outcomes[200] == traffic.total >= 20


def test_a_service_that_never_routes_is_a_clear_failure() -> None:
    with routed_after(None) as url, pytest.raises(AssertionError, match="route to a ready server"):
        wait_until_routed(url, timeout=0.5)
