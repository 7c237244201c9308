"""The demo's world: iris flowers measured by a sensor that gets re-calibrated, and its traffic.

Before the change the traffic is drawn from the iris data itself (what v1 was
trained on), so nothing drifts. Then the petal sensor is re-calibrated and reads
every petal longer and wider (`PETAL_SHIFT`): the same flowers, new numbers. v1
now misclassifies many of them, the inputs' PSI rises, and the labelled feedback
(the true species, posted to ``/feedback`` by request id) shows the accuracy drop.
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
    feedback: int | None
    """The /feedback status (None when the phase sends no labels)."""


@dataclass
class Traffic:
    """Requests at a bounded pace from a background thread, until stopped or out of budget.

    Each request and its feedback share one fresh connection: kube-proxy balances per
    connection, so the labels reach the pod that answered (and remembers the request
    id) while the canary's split still applies request by request.
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
    observations: list[Observation] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def switch(self, phase: str, *, shifted: bool, labelled: bool) -> None:
        """Change what the next requests send (the running request finishes as it was)."""
        self.shifted, self.labelled, self.phase = shifted, labelled, phase

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._run, name="demo-traffic", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop sending and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

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
            feedback = None
            if labelled:
                feedback, _ = _post(
                    connection, "/feedback", {"request_id": body["request_id"], "labels": labels}
                )
        finally:
            connection.close()
        return Observation(
            time.time(), phase, str(body.get("model_version")), len(rows), correct, feedback
        )


def _post(connection: http.client.HTTPConnection, path: str, body: object) -> tuple[int, Any]:
    connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, json.loads(response.read() or b"null")
