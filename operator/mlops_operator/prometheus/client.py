"""A small async client for Prometheus' HTTP API: instant queries, nothing more.

Only ``/api/v1/query`` is used: every decision the operator takes (canary
analysis, rollback floors, drift) is an instant query over a window
(``increase(x[5m])``), so range queries and their step alignment are not needed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

__all__ = ["PrometheusClient", "PrometheusError", "Sample", "parse_query_response"]


@dataclass(frozen=True)
class Sample:
    """One value of an instant vector: its labels (``__name__`` included when known) and value."""

    labels: Mapping[str, str] = field(default_factory=dict)
    value: float = math.nan
    timestamp: float | None = None

    @property
    def name(self) -> str:
        """The metric name, or ``""`` when the query's result has none (e.g. after ``sum``)."""
        return self.labels.get("__name__", "")


class PrometheusError(Exception):
    """Prometheus could not be reached, or refused or failed the query."""


def _value(pair: Any) -> tuple[float, float]:
    try:
        timestamp, text = pair
        return float(timestamp), float(text)  # "NaN", "+Inf" and "-Inf" parse as floats
    except (TypeError, ValueError) as error:
        raise PrometheusError(f'a sample value must be [time, "number"], got {pair!r}') from error


def parse_query_response(payload: Any) -> list[Sample]:
    """The samples of an ``/api/v1/query`` answer (vector or scalar); raise on errors and matrices."""
    if not isinstance(payload, dict):
        raise PrometheusError(f"expected a JSON object from Prometheus, got {payload!r:.200}")
    if payload.get("status") != "success":
        raise PrometheusError(
            f"Prometheus refused the query: {payload.get('errorType', 'error')}:"
            f" {payload.get('error', 'no message')}"
        )
    data = payload.get("data") or {}
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "vector":
        samples = []
        for entry in result or []:
            timestamp, value = _value(entry.get("value"))
            samples.append(Sample(dict(entry.get("metric") or {}), value, timestamp))
        return samples
    if kind == "scalar":
        timestamp, value = _value(result)
        return [Sample({}, value, timestamp)]
    raise PrometheusError(
        f"expected a vector or scalar result, got {kind!r}: write an instant query"
        " (e.g. `increase(x[5m])`), not a range selector on its own"
    )


class PrometheusClient:
    """Instant PromQL queries against one Prometheus server.

    Create it once and share it; it opens its HTTP session on first use.
    """

    def __init__(
        self, base_url: str, *, timeout: float = 10.0, max_bytes: int = 16 * 1024 * 1024
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"the Prometheus URL must start with http:// or https://, got {base_url!r}"
            )
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_bytes = max_bytes
        self._session: aiohttp.ClientSession | None = None

    async def query(self, promql: str, *, at: float | None = None) -> list[Sample]:
        """Evaluate `promql` now (or at Unix time `at`); the resulting instant vector."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        form = {"query": promql}
        if at is not None:
            form["time"] = f"{at:.3f}"
        url = f"{self.base_url}/api/v1/query"
        try:
            # No redirects, a bounded body, a bounded time: the answer cannot take the
            # operator anywhere else, nor hold it, nor fill its memory.
            async with self._session.post(url, data=form, allow_redirects=False) as response:
                if 300 <= response.status < 400:
                    raise PrometheusError(
                        f"Prometheus at {self.base_url} answered a redirect (HTTP"
                        f" {response.status}); redirects are not followed"
                    )
                body = await response.content.read(self._max_bytes + 1)
            if len(body) > self._max_bytes:
                raise PrometheusError(
                    f"Prometheus at {self.base_url} answered more than {self._max_bytes} bytes"
                )
            payload = json.loads(body)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise PrometheusError(f"cannot query Prometheus at {self.base_url}: {error}") from error
        return parse_query_response(payload)

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None
