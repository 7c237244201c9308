"""A bounded HTTP client that keeps predicting through a Service while a rollout happens."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Self


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


@dataclass
class Traffic:
    """Requests at a bounded pace until stopped (or until `max_requests` / `max_seconds`)."""

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
            status, body = predict(self.base_url, [self.rows[index % len(self.rows)]])
            self.outcomes[status] += 1
            if status == 200:
                self.versions[str(body.get("model_version"))] += 1
                if body.get("labels"):
                    self.request_ids.append((body["request_id"], body["labels"][0]))
            elif len(self.failures) < 20:
                self.failures.append(f"{status}: {body}")
            # Pacing, not synchronisation: the load stays bounded whatever the server does.
            self._stop.wait(self.interval)

    def __enter__(self) -> Self:
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
