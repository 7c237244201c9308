"""Hooks beside the request path: shadow mirroring, payload logging, and canary forwarding.

Mirroring and logging take records through ``offer`` which never blocks and
never raises: the record joins a bounded queue or is dropped (and counted).
Background tasks do the I/O, so the caller's latency does not depend on the
shadow or the store.

Forwarding is on the path by design: during a canary the champion's server
answers a configured share of requests by passing them to the canary's Service
and returning its answer, so ``weight: 10`` means 10 % of requests whatever the
pods of each version (the Service alone can only split by pods). The share is
exact: `TrafficShare` picks every n-th request deterministically, not by chance.
A canary that cannot be reached, or does not answer within half the request's
deadline, is not the client's problem: the champion then answers itself, and the
failure is counted (the canary's own metrics show its latency to the analysis).

The payload log holds two kinds of JSON lines, joined later by ``request_id``
(``mlops_operator.trainer.payloadlog`` reads them as a training dataset):

- a request: ``time``, ``request_id``, ``endpoint`` (``predict`` or ``v2_infer``),
  ``model``, ``model_version``, ``features`` (the card's feature names, so list
  rows can be read without the card), ``request`` and ``response`` (the bodies);
- its feedback: ``time``, ``request_id``, ``endpoint: "feedback"``, ``model``,
  ``model_version`` and ``labels`` (one per row).

Sampling is decided by the request id (a hash, not a coin), so the feedback of a
logged request is logged too and the feedback of an unlogged one is not.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from mlops_operator.serving.binary import HEADER_LENGTH
from mlops_operator.serving.metrics import ServingMetrics
from mlops_operator.storage.keys import InvalidKeyError
from mlops_operator.storage.store import ArtifactStore, StorageError

__all__ = ["CanaryForwarder", "PayloadLogger", "ShadowMirror", "TrafficShare"]

log = logging.getLogger(__name__)

_SHADOW_TIMEOUT = aiohttp.ClientTimeout(total=5)
_FORWARD_TIMEOUT = aiohttp.ClientTimeout(total=60)


class TrafficShare:
    """Exactly ``percent`` of the calls to `take`, spread evenly: every call whose count
    crosses the next multiple of 100/percent (``take`` is True 10 times in any 100 at 10 %)."""

    def __init__(self, percent: int) -> None:
        if not 0 <= percent <= 100:
            raise ValueError(f"a share is between 0 and 100 percent, not {percent}")
        self._percent = percent
        self._count = 0

    def take(self) -> bool:
        """Whether this call is in the share."""
        before = self._count * self._percent // 100
        self._count += 1
        return self._count * self._percent // 100 > before


class ShadowMirror:
    """Sends a copy of ``percent`` % of the requests to a shadow server, fire-and-forget."""

    def __init__(
        self, base_url: str, metrics: ServingMetrics, *, queue_size: int, percent: int = 100
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._metrics = metrics
        self._share = TrafficShare(percent)
        self._queue: asyncio.Queue[tuple[str, bytes, str]] = asyncio.Queue(queue_size)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the sending task on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._send_all(), name="shadow")

    def offer(self, path: str, body: bytes, request_id: str) -> None:
        """Queue a copy of a request in the share, or drop it when the shadow is behind."""
        if not self._share.take():
            return
        try:
            self._queue.put_nowait((path, body, request_id))
        except asyncio.QueueFull:
            self._metrics.observe_side_channel("shadow", "dropped")

    async def stop(self) -> None:
        """Stop sending; copies still queued are dropped (they are best effort)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _send_all(self) -> None:
        async with aiohttp.ClientSession(timeout=_SHADOW_TIMEOUT) as session:
            while True:
                path, body, request_id = await self._queue.get()
                headers = {
                    "Content-Type": "application/json",
                    "X-Request-ID": request_id,
                    "X-Mlops-Shadow": "1",
                }
                try:
                    async with session.post(self._base_url + path, data=body, headers=headers) as r:
                        await r.read()
                        outcome = "sent" if r.status < 500 else "failed"
                except (aiohttp.ClientError, TimeoutError):
                    outcome = "failed"
                self._metrics.observe_side_channel("shadow", outcome)


class PayloadLogger:
    """Writes a sample of requests and responses as JSON lines to the artifact store.

    Bounded three ways: the share of requests sampled, the records waiting in
    memory, and the bytes one worker writes in its lifetime. Each flush writes a
    new file (``<model>/<version>/<YYYY-MM-DD>/<host>-<pid>-<n>.jsonl``), so files
    rotate every few seconds and by day.
    """

    _FLUSH_SECONDS = 5.0
    _QUEUE_RECORDS = 10_000

    def __init__(
        self, uri: str, metrics: ServingMetrics, *, sample_rate: float, max_bytes: int
    ) -> None:
        model = metrics.model
        self._store = ArtifactStore(uri)
        self._prefix = f"{model.name}/{model.version}"
        self._model = model
        self._features = orjson.Fragment(orjson.dumps(model.feature_names))
        self._metrics = metrics
        # Request ids whose crc32 falls under this bound are logged (with their feedback).
        self._sample_bound = int(sample_rate * 2**32)
        self._budget = max_bytes
        self._pending: list[bytes] = []
        self._file_index = 0
        self._task: asyncio.Task[None] | None = None
        self._writer = f"{socket.gethostname()}-{os.getpid()}"

    def start(self) -> None:
        """Start the flushing task on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._flush_forever(), name="payloads")

    def sampled(self, request_id: str) -> bool:
        """Whether the request `request_id` (and later its feedback) is logged."""
        return zlib.crc32(request_id.encode()) < self._sample_bound

    def log_request(self, endpoint: str, request_id: str, request: bytes, response: bytes) -> None:
        """Log an answered request with its response when its id is sampled."""
        if not self.sampled(request_id):
            return
        self.offer(
            {
                **self._header(endpoint, request_id),
                "features": self._features,
                "request": orjson.Fragment(request),
                "response": orjson.Fragment(response),
            }
        )

    def log_feedback(self, request_id: str, labels: Sequence[Any]) -> None:
        """Log the true labels of a request whose id is sampled (its request was logged)."""
        if self.sampled(request_id):
            self.offer({**self._header("feedback", request_id), "labels": list(labels)})

    def _header(self, endpoint: str, request_id: str) -> dict[str, Any]:
        return {
            "time": dt.datetime.now(dt.UTC).isoformat(),
            "request_id": request_id,
            "endpoint": endpoint,
            "model": self._model.name,
            "model_version": self._model.version,
        }

    def offer(self, record: dict[str, Any]) -> None:
        """Queue one record, or drop it when the queue or the byte budget is full."""
        line = orjson.dumps(record) + b"\n"
        if len(self._pending) >= self._QUEUE_RECORDS or len(line) > self._budget:
            self._metrics.observe_side_channel("payload_log", "dropped")
            return
        self._budget -= len(line)
        self._pending.append(line)

    async def stop(self) -> None:
        """Write what is pending, then stop."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()

    async def flush(self) -> None:
        """Write the pending records to a new file in the store."""
        if not self._pending:
            return
        lines, self._pending = self._pending, []
        day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
        self._file_index += 1
        key = f"{self._prefix}/{day}/{self._writer}-{self._file_index:06d}.jsonl"
        try:
            await asyncio.to_thread(self._store.put_bytes, key, b"".join(lines))
        except (StorageError, InvalidKeyError, OSError) as error:
            log.warning("payload log: cannot write %s: %s", key, error)
            self._metrics.observe_side_channel("payload_log", "failed", len(lines))
            return
        self._metrics.observe_side_channel("payload_log", "written", len(lines))

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self._FLUSH_SECONDS)
            await self.flush()


# What a forwarded request and its answer keep: the body's type and, for binary tensor data,
# the JSON header's length; the answering version and its request id.
_FORWARDED_REQUEST_HEADERS = ("Content-Type", HEADER_LENGTH)
_FORWARDED_ANSWER_HEADERS = ("Content-Type", HEADER_LENGTH, "X-Model-Version", "X-Request-ID")


class CanaryForwarder:
    """Passes ``percent`` % of the requests to the canary's server and relays its answers.

    The canary counts what it serves in its own metrics and records its own predictions
    (the rollout's analysis reads both), so a forwarded request is not the champion's.
    Labels for it may come to any replica of either version: request ids are signed with
    the deployment's key, and the evaluator joins labels with predictions wherever they
    were recorded.
    """

    def __init__(self, base_url: str, metrics: ServingMetrics, *, percent: int) -> None:
        self._base_url = base_url.rstrip("/")
        self._metrics = metrics
        self._share = TrafficShare(percent)
        self._session: aiohttp.ClientSession | None = None

    def start(self) -> None:
        """Open the connection pool to the canary on the running loop."""
        self._session = aiohttp.ClientSession(timeout=_FORWARD_TIMEOUT)

    async def stop(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()

    def take(self) -> bool:
        """Whether this request is in the canary's share."""
        return self._session is not None and self._share.take()

    async def forward(
        self, path: str, body: bytes, headers: Mapping[str, str], *, within: float | None
    ) -> web.Response | None:
        """The canary's answer to the request, or None when it could not be had `within`
        seconds (`_FORWARD_TIMEOUT` when None): the caller then answers itself."""
        assert self._session is not None
        sent = {k: headers[k] for k in _FORWARDED_REQUEST_HEADERS if k in headers}
        try:
            async with asyncio.timeout(within):
                async with self._session.post(
                    self._base_url + path, data=body, headers=sent
                ) as answer:
                    data = await answer.read()
                    kept = {
                        k: answer.headers[k]
                        for k in _FORWARDED_ANSWER_HEADERS
                        if k in answer.headers
                    }
        except TimeoutError:
            self._metrics.observe_side_channel("canary", "timeout")
            return None
        except aiohttp.ClientError:
            self._metrics.observe_side_channel("canary", "failed")
            return None
        self._metrics.observe_side_channel("canary", "forwarded")
        return web.Response(body=data, status=answer.status, headers=kept)
