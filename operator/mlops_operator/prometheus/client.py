"""A small async client for Prometheus' HTTP API: instant and range queries.

Every decision the operator takes (canary analysis, rollback floors, drift) is an
instant query over a window (``increase(x[5m])``), ``/api/v1/query``. Range queries
(``/api/v1/query_range``) are for pictures only: `mlops console` plots the same
expressions over time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

__all__ = [
    "PrometheusClient",
    "PrometheusError",
    "Sample",
    "Series",
    "parse_query_response",
    "parse_range_response",
]


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
    data = _success(payload)
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


@dataclass(frozen=True)
class Series:
    """One series of a range query: its labels and its (time, value) points, oldest first."""

    labels: Mapping[str, str] = field(default_factory=dict)
    points: tuple[tuple[float, float], ...] = ()


def _success(payload: Any) -> Mapping[str, Any]:
    if not isinstance(payload, dict):
        raise PrometheusError(f"expected a JSON object from Prometheus, got {payload!r:.200}")
    if payload.get("status") != "success":
        raise PrometheusError(
            f"Prometheus refused the query: {payload.get('errorType', 'error')}:"
            f" {payload.get('error', 'no message')}"
        )
    data: Mapping[str, Any] = payload.get("data") or {}
    return data


def parse_range_response(payload: Any) -> list[Series]:
    """The series of an ``/api/v1/query_range`` answer (a matrix); raise on errors."""
    data = _success(payload)
    if data.get("resultType") != "matrix":
        raise PrometheusError(
            f"expected a matrix from a range query, got {data.get('resultType')!r}"
        )
    return [
        Series(dict(entry.get("metric") or {}), tuple(_value(p) for p in entry.get("values") or []))
        for entry in data.get("result") or []
    ]


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

    async def _post(self, path: str, form: Mapping[str, str]) -> Any:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        url = f"{self.base_url}{path}"
        try:
            # No redirects, a bounded body, a bounded time: the answer cannot take the
            # operator anywhere else, nor hold it, nor fill its memory.
            async with self._session.post(url, data=dict(form), allow_redirects=False) as response:
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
            return json.loads(body)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise PrometheusError(f"cannot query Prometheus at {self.base_url}: {error}") from error

    async def query(self, promql: str, *, at: float | None = None) -> list[Sample]:
        """Evaluate `promql` now (or at Unix time `at`); the resulting instant vector."""
        form = {"query": promql}
        if at is not None:
            form["time"] = f"{at:.3f}"
        return parse_query_response(await self._post("/api/v1/query", form))

    async def query_range(
        self, promql: str, *, start: float, end: float, step: float
    ) -> list[Series]:
        """Evaluate `promql` every `step` seconds from `start` to `end` (Unix times)."""
        form = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        return parse_range_response(await self._post("/api/v1/query_range", form))

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None
