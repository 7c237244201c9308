"""The demo's world: iris flowers measured by a sensor that gets re-calibrated, and its traffic.

Before the change the traffic is drawn from the iris data itself (what v1 was
trained on), so nothing drifts. Then the petal sensor is re-calibrated and reads
every petal longer and wider (`PETAL_SHIFT`): the same flowers, new numbers. v1
now misclassifies many of them, the inputs' PSI rises, and the labelled feedback
(the true species, posted to ``/feedback`` by request id) shows the accuracy drop.
The labels come as another system would send them: a separate labeller posts
them in batches a few seconds after the predictions, each batch on a new
connection, so they reach whichever pod the Service picks (``docs/labels.md``).
Every draw comes from one seeded generator, so a run is repeatable.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import urlsplit

import numpy as np

__all__ = ["PETAL_SHIFT", "Observation", "Traffic", "World"]

PETAL_SHIFT = (0.0, 0.0, 2.0, 0.8)
"""Added to (sepal length, sepal width, petal length, petal width) after the re-calibration, in cm."""


@dataclass(frozen=True)
class World:
    """The flowers (features in the trainer's column order) and their species."""

    rows: np.ndarray[Any, Any]
    labels: np.ndarray[Any, Any]

    @classmethod
    def iris(cls) -> World:
        """scikit-learn's bundled iris data (no download), as the trainer loads it."""
        from sklearn.datasets import load_iris

        data = load_iris()
        return cls(np.asarray(data.data, dtype=float), np.asarray(data.target))

    def draw(
        self, rng: np.random.Generator, count: int, *, shifted: bool
    ) -> tuple[list[list[float]], list[int]]:
        """`count` flowers as measured (after the re-calibration when `shifted`) and their species."""
        index = rng.integers(0, len(self.rows), size=count)
        rows = self.rows[index] + (np.asarray(PETAL_SHIFT) if shifted else 0.0)
        return np.round(rows, 2).tolist(), self.labels[index].tolist()


@dataclass(frozen=True)
class Observation:
    """One request as the client saw it."""

    time: float
    phase: str
    version: str | None
    rows: int
    correct: int
    labelled: bool
    """Whether the true species were handed to the labeller."""


@dataclass
class Traffic:
    """Requests at a bounded pace from a background thread, until stopped or out of budget.

    Each request goes on a fresh connection (kube-proxy balances per connection, so the
    canary's split applies request by request). Labels are not sent by this thread:
    they queue for the labeller thread, which posts them `label_delay` seconds later in
    batches, each on a new connection, like a system of record catching up.
    """

    base_url: str
    world: World
    seed: int
    rows_per_request: int = 5
    interval: float = 0.05
    max_requests: int = 20_000
    max_seconds: float = 900.0
    phase: str = "reference"
    shifted: bool = False
    labelled: bool = False
    label_delay: float = 2.0
    observations: list[Observation] = field(default_factory=list)
    label_statuses: list[int] = field(default_factory=list)
    """The HTTP status of every /feedback batch the labeller posted."""
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _labeller: threading.Thread | None = None
    _pending: list[tuple[float, str, list[int]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def switch(self, phase: str, *, shifted: bool, labelled: bool) -> None:
        """Change what the next requests send (the running request finishes as it was)."""
        self.shifted, self.labelled, self.phase = shifted, labelled, phase

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._run, name="demo-traffic", daemon=True)
        self._labeller = threading.Thread(target=self._label, name="demo-labeller", daemon=True)
        self._thread.start()
        self._labeller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop sending and wait for the thread."""
        self._stop.set()
        for thread in (self._thread, self._labeller):
            if thread is not None:
                thread.join(timeout=30)

    def _run(self) -> None:
        rng = np.random.default_rng(self.seed)
        deadline = time.monotonic() + self.max_seconds
        for _ in range(self.max_requests):
            if self._stop.is_set() or time.monotonic() > deadline:
                return
            phase, shifted, labelled = self.phase, self.shifted, self.labelled
            rows, labels = self.world.draw(rng, self.rows_per_request, shifted=shifted)
            try:
                self.observations.append(self._exchange(phase, rows, labels, labelled))
            except (OSError, http.client.HTTPException, ValueError) as error:
                if len(self.errors) < 50:
                    self.errors.append(f"{phase}: {error!r}")
            # Pacing: the load stays bounded whatever the server does.
            self._stop.wait(self.interval)

    def _exchange(
        self, phase: str, rows: list[list[float]], labels: list[int], labelled: bool
    ) -> Observation:
        url = urlsplit(self.base_url)
        connection = http.client.HTTPConnection(url.hostname or "", url.port or 80, timeout=10)
        try:
            status, body = _post(connection, "/predict", {"rows": rows})
            if status != 200:
                raise ValueError(f"/predict answered {status}: {body}")
            predicted = [int(label) for label in body["labels"]]
            correct = sum(p == t for p, t in zip(predicted, labels, strict=True))
        finally:
            connection.close()
        if labelled:
            with self._lock:
                self._pending.append((time.monotonic(), body["request_id"], labels))
        return Observation(
            time.time(), phase, str(body.get("model_version")), len(rows), correct, labelled
        )

    def _label(self) -> None:
        """Post the labels that are `label_delay` old, in one batch per second, each anew."""
        while not self._stop.wait(1.0):
            cutoff = time.monotonic() - self.label_delay
            with self._lock:
                due = [item for item in self._pending if item[0] <= cutoff]
                self._pending = [item for item in self._pending if item[0] > cutoff]
            if not due:
                continue
            batch = [{"request_id": rid, "labels": labels} for _, rid, labels in due]
            url = urlsplit(self.base_url)
            connection = http.client.HTTPConnection(url.hostname or "", url.port or 80, timeout=10)
            try:
                status, _ = _post(connection, "/feedback", batch)
                self.label_statuses.append(status)
            except (OSError, http.client.HTTPException, ValueError) as error:
                if len(self.errors) < 50:
                    self.errors.append(f"labels: {error!r}")
            finally:
                connection.close()


def _post(connection: http.client.HTTPConnection, path: str, body: object) -> tuple[int, Any]:
    connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, json.loads(response.read() or b"null")
