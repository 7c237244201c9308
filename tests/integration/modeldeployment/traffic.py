"""A bounded HTTP client that keeps predicting through a Service while a rollout happens.

A ModelDeployment is Ready once a pod of it is, and a pod's readiness reaches the
Service's rules only at kube-proxy's next sync (nftables: at most once a second); until
then the ClusterIP refuses connections (0.1-0.7 s after the pod was Ready in 12 of 12
tries on the local cluster, 2026-12-02). A test that counts every request of a rollout
starts counting once the Service answers (`wait_until_routed`), or it counts that lag:
`test_resume` failed on requests refused at its very start, before the canary began.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

from tests.kube import wait_for


def predict(base_url: str, rows: list[Any], timeout: float = 10) -> tuple[int, dict[str, Any]]:
    """POST /predict; the status and the JSON body (or the error text)."""
    request = urllib.request.Request(
        f"{base_url}/predict",
        data=json.dumps({"rows": rows}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, {"error": error.read().decode(errors="replace")}
    except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
        return 0, {"error": repr(error)}


def _routed(base_url: str) -> bool:
    """Whether a request through `base_url` reaches a ready server (its readiness endpoint)."""
    try:
        with urllib.request.urlopen(f"{base_url}/v2/health/ready", timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def wait_until_routed(base_url: str, timeout: float = 60) -> None:
    """Wait until the Service at `base_url` routes to a ready server.

    Asks the readiness endpoint, not /predict: a prediction would be logged (and count
    against label coverage) without being one of the test's.
    """
    wait_for(lambda: _routed(base_url), timeout=timeout, interval=0.05,
             what=f"{base_url} to route to a ready server")  # fmt: skip


@dataclass
class Traffic:
    """Requests at a bounded pace until stopped (or until `max_requests` / `max_seconds`).

    Entering waits until the Service routes (`wait_until_routed`), so every request
    counted was sent to a Service that had a ready endpoint in its rules.
    """

    base_url: str
    rows: list[Any]
    interval: float = 0.05
    max_requests: int = 20_000
    max_seconds: float = 900
    outcomes: Counter[int] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)
    request_ids: list[tuple[str, str]] = field(default_factory=list)
    """(request id, predicted label) of every answered classifier request, for labelling."""
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        for index in range(self.max_requests):
            if self._stop.is_set() or time.monotonic() > deadline:
                return
            sent = datetime.now()
            status, body = predict(self.base_url, [self.rows[index % len(self.rows)]])
            self.outcomes[status] += 1
            if status == 200:
                self.versions[str(body.get("model_version"))] += 1
                if body.get("labels"):
                    self.request_ids.append((body["request_id"], body["labels"][0]))
            elif len(self.failures) < 20:
                # Wall-clock, to find the failure in the cluster's and the pods' logs.
                self.failures.append(f"sent {sent:%H:%M:%S.%f}: {status}: {body}")
            # Pacing, not synchronisation: the load stays bounded whatever the server does.
            self._stop.wait(self.interval)

    def __enter__(self) -> Self:
        wait_until_routed(self.base_url)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    @property
    def total(self) -> int:
        """Requests sent."""
        return sum(self.outcomes.values())
