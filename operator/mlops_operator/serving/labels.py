"""Ground truth that survives restarts and scale: signed request ids, and the prediction and label logs.

Labels come minutes to days after the prediction, from another system, on a new
connection, to whichever replica and worker the Service picks, often after a
rollout replaced every pod. Nothing about a prediction may therefore live only in
the memory of the worker that answered. Three parts make that so:

- **Signed request ids.** An id carries the prediction's time and an HMAC tag made
  with the deployment's key (``labels_key``, from a Secret the operator creates).
  Any worker of any replica, even one started after the prediction, checks a
  label's id without memory or I/O: a forged or mistyped id is 404, an id older
  than the retention is 410. (Ids are issued before the body is read, so they
  cannot carry the row count: labels for rows a request did not have are counted
  by the join as unmatched.)
- **The prediction log.** Every answered inference request leaves one small record
  per row (id, row, time, version, predicted class or value, and for classifiers
  the calibrated confidence used to estimate accuracy before labels arrive),
  whatever the payload log samples. Each onnxruntime call's records are appended to
  an in-memory buffer after its requests are answered (a few list extends per call)
  and written as Parquet files every few seconds by a background task, so the
  request path never waits on the store.
- **The label log.** Each accepted label is written the same way.

Both logs are Hive-partitioned by day under the deployment's labels root::

    <root>/predictions/date=YYYY-MM-DD/<host>-<pid>-<n>.parquet
    <root>/labels/date=YYYY-MM-DD/<host>-<pid>-<n>.parquet

The evaluator (``mlops_operator.evaluator``) joins them by request id and row
with DuckDB; Spark or Trino read the same files (``docs/labels.md``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import io
import itertools
import logging
import os
import socket
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from mlops_operator.modelcard import Calibration
from mlops_operator.serving.errors import (
    ExpiredRequestId,
    InvalidInput,
    LabelsBacklogged,
    UnknownRequestId,
)
from mlops_operator.serving.metrics import ServingMetrics
from mlops_operator.storage.keys import InvalidKeyError
from mlops_operator.storage.store import ArtifactStore, StorageError

__all__ = [
    "LABELS_FOLDER",
    "LABEL_SCHEMA",
    "PREDICTIONS_FOLDER",
    "PREDICTION_SCHEMA",
    "LabelRecorder",
    "RequestIds",
    "calibrated_confidence",
    "issued_at",
    "parse_feedback",
]

log = logging.getLogger(__name__)

PREDICTIONS_FOLDER = "predictions"
LABELS_FOLDER = "labels"

PREDICTION_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("row", pa.int32(), nullable=False),
        pa.field("predicted_at", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("model_version", pa.string(), nullable=False),
        pa.field("predicted_label", pa.string()),
        pa.field("predicted_value", pa.float64()),
        pa.field("confidence", pa.float32()),
    ]
)
"""One row per predicted row; ``predicted_label`` for classifiers, ``predicted_value`` for
regressors; ``confidence`` is the calibrated probability that the predicted class is right."""

LABEL_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("row", pa.int32(), nullable=False),
        pa.field("predicted_at", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("labelled_at", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("label", pa.string()),
        pa.field("value", pa.float64()),
    ]
)
"""One row per labelled row; ``predicted_at`` comes from the signed id, so the evaluator
can prune label files by the predictions' days."""

_TAG_HEX = 20  # 80 bits of HMAC: guessing a valid id is out of reach
_BLOCK = 64  # SHA-256's block: HMAC's key pads are this long (RFC 2104)
_INNER_PAD = bytes(x ^ 0x36 for x in range(256))
_OUTER_PAD = bytes(x ^ 0x5C for x in range(256))
_SEEN_IDS = 100_000  # ids this worker took labels for, to count duplicates early


class RequestIds:
    """Issues request ids and checks the ids labels name, statelessly (module docstring)."""

    def __init__(self, key: bytes, *, worker: int, retention_seconds: float) -> None:
        # HMAC-SHA256 with the key's two pads hashed once (RFC 2104's construction, as the
        # standard library's pure-Python HMAC keeps them): a tag is then two state copies and
        # two compressions, where the one-shot hmac.digest repeats the key schedule and
        # OpenSSL's algorithm lookup on every request (26,000 instructions against 12,600).
        # The tags are hmac.digest's, bit for bit: ids issued before verify, and servers of
        # the previous release verify these.
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(key.translate(_INNER_PAD))
        self._outer = hashlib.sha256(key.translate(_OUTER_PAD))
        # A random nonce per process: ids stay unique across workers, replicas and restarts.
        self._prefix = f"{os.urandom(4).hex()}-{worker:x}-"
        self._counter = itertools.count(1)
        self.retention_ms = int(retention_seconds * 1000)

    def issue(self) -> str:
        """A new id for a request arriving now, signed."""
        # %-formatting: an f-string's format specs cost a third more here, on every request.
        ms, count = time.time_ns() // 1_000_000, next(self._counter)
        body = "%x-%s%x" % (ms, self._prefix, count)  # noqa: UP031
        return f"{body}.{self._tag(body)}"

    def _tag(self, body: str) -> str:
        inner = self._inner.copy()
        inner.update(body.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()[:_TAG_HEX]

    def verify(self, request_id: str, *, now_ms: int | None = None) -> int:
        """When the request was predicted (ms); UnknownRequestId or ExpiredRequestId otherwise."""
        body, _, tag = request_id.rpartition(".")
        issued_ms = issued_at(body)
        if issued_ms < 0 or not hmac.compare_digest(tag, self._tag(body)):
            raise UnknownRequestId(
                f"request id {request_id!r} was not issued by this deployment; send the"
                " request_id (or X-Request-ID) of a successful prediction"
            )
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        if now_ms - issued_ms > self.retention_ms:
            issued = dt.datetime.fromtimestamp(issued_ms / 1000, dt.UTC).isoformat()
            raise ExpiredRequestId(
                f"request id {request_id!r} was predicted at {issued}, more than the label"
                f" retention ({self.retention_ms / 3_600_000:g} h) ago; its prediction is no"
                " longer kept"
            )
        return issued_ms


def issued_at(request_id: str) -> int:
    """The time (ms) an id (or its unsigned body) carries; -1 when it carries none."""
    try:
        return int(request_id.partition("-")[0], 16)
    except ValueError:
        return -1


def calibrated_confidence(
    top_probability: npt.NDArray[np.float64], calibration: Calibration | None
) -> npt.NDArray[np.float64]:
    """P(the predicted class is right) per row, from its top probability and the card's map.

    Without a calibration (a card from before it existed) the raw top probability stands in.
    """
    if calibration is None:
        return top_probability
    return np.interp(top_probability, calibration.probabilities, calibration.accuracy)


def parse_feedback(body: object, *, classes: Sequence[str] | None) -> list[tuple[str, list[Any]]]:
    """``(request_id, labels)`` pairs from ``{"request_id": ..., "labels": [...]}`` or a list.

    `classes`: the model's classes (labels must be one of them), or None for a regressor.
    """
    items = body if isinstance(body, list) else [body]
    if not items:
        raise InvalidInput('expected {"request_id": "...", "labels": [...]} or a non-empty list')
    known = set(classes or ())
    pairs: list[tuple[str, list[Any]]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != {"request_id", "labels"}:
            raise InvalidInput(
                f'feedback {index}: expected an object with exactly "request_id" and "labels"'
            )
        request_id, labels = item["request_id"], item["labels"]
        if not isinstance(request_id, str):
            raise InvalidInput(f"feedback {index}: request_id must be a string")
        if not isinstance(labels, list) or not labels:
            raise InvalidInput(f"feedback {index}: labels must be a non-empty list, one per row")
        if classes is None:
            if not all(type(v) in (int, float) for v in labels):
                raise InvalidInput(f"feedback {index}: regression labels must be numbers")
            pairs.append((request_id, [float(v) for v in labels]))
            continue
        if not all(type(v) in (str, int) for v in labels):
            raise InvalidInput(f"feedback {index}: class labels must be strings or integers")
        texts = [str(v) for v in labels]
        unknown = sorted(set(texts) - known)
        if unknown:
            raise InvalidInput(
                f"feedback {index}: {', '.join(map(repr, unknown))} is not a class of this model;"
                f" expected one of {', '.join(map(repr, classes))}"
            )
        pairs.append((request_id, texts))
    return pairs


@dataclass
class _Pending:
    """Rows waiting for a flush, column by column in flat lists.

    Per request: its id, row count and times; per row: the class (or value) and the top
    probability. Flat lists of str, int and float cost one append each and are not
    tracked by the garbage collector: a buffer of dicts per request was, and its
    collections made recording cost tens of microseconds per request under load.
    """

    request_id: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    time_ms: list[int] = field(default_factory=list)
    labelled_ms: list[int] = field(default_factory=list)
    label: list[Any] = field(default_factory=list)
    value: list[float] = field(default_factory=list)
    top: list[float] = field(default_factory=list)
    total: int = 0

    def per_row(self, values: list[Any]) -> pa.Array:
        """A per-request column repeated for each of the request's rows."""
        counts = np.asarray(self.rows, dtype=np.int64)
        return pa.array(values).take(pa.array(np.repeat(np.arange(len(counts)), counts)))

    def row_numbers(self) -> npt.NDArray[np.int32]:
        """0, 1, … within each request."""
        counts = np.asarray(self.rows, dtype=np.int64)
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        return (np.arange(self.total) - starts).astype(np.int32)

    def texts_or_nulls(self) -> pa.Array:
        if not self.label:
            return pa.nulls(self.total, pa.string())
        return pa.array(self.label).cast(pa.string())

    def values_or_nulls(self) -> pa.Array:
        return (
            pa.array(self.value, pa.float64()) if self.value else pa.nulls(self.total, pa.float64())
        )


class _ParquetLog:
    """Rows buffered in memory, written as one Parquet file per flush (never blocking a caller)."""

    def __init__(
        self,
        store: ArtifactStore,
        folder: str,
        build: Callable[[_Pending], pa.Table],
        metrics: ServingMetrics,
        *,
        max_pending_rows: int,
        flush_seconds: float,
    ) -> None:
        self._store = store
        self._folder = folder
        self._build = build
        self._metrics = metrics
        self._max_rows = max_pending_rows
        self._flush_seconds = flush_seconds
        self.pending = _Pending()
        self._files = itertools.count(1)
        self._writer = f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the flushing task on the running loop."""
        name = f"{self._folder}-log"
        self._task = asyncio.get_running_loop().create_task(self._flush_forever(), name=name)

    def room(self, rows: int) -> bool:
        """Whether `rows` more rows fit; counts them as dropped when they do not."""
        if self.pending.total + rows > self._max_rows:
            self._metrics.observe_side_channel(self._folder, "dropped", rows)
            return False
        return True

    async def stop(self) -> None:
        """Write what is pending, then stop."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()

    async def flush(self) -> None:
        """Write the pending rows to a new Parquet file (kept in memory if the store fails)."""
        pending = self.pending
        if not pending.total:
            return
        self.pending = _Pending()
        day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
        key = f"{self._folder}/date={day}/{self._writer}-{next(self._files):06d}.parquet"
        try:
            await asyncio.to_thread(self._write, key, pending)
        except (StorageError, InvalidKeyError, OSError, pa.ArrowException) as error:
            log.warning("%s log: cannot write %s: %s", self._folder, key, error)
            self._metrics.observe_side_channel(self._folder, "failed", pending.total)
            if pending.total + self.pending.total <= self._max_rows:
                # Kept for the next flush: a store that is down for a while loses nothing.
                self.pending = _merge(pending, self.pending)
            return
        self._metrics.observe_side_channel(self._folder, "written", pending.total)

    def _write(self, key: str, pending: _Pending) -> None:
        buffer = io.BytesIO()
        pq.write_table(self._build(pending), buffer, compression="zstd")
        self._store.put_bytes(key, buffer.getvalue())

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            await self.flush()


def _merge(first: _Pending, second: _Pending) -> _Pending:
    return _Pending(*(getattr(first, f.name) + getattr(second, f.name) for f in fields(_Pending)))


class LabelRecorder:
    """The prediction and label logs of one worker, and the ids that tie them together."""

    def __init__(
        self,
        uri: str,
        metrics: ServingMetrics,
        ids: RequestIds,
        *,
        calibration: Calibration | None,
        max_pending_rows: int = 1_000_000,
        flush_seconds: float = 2.0,
    ) -> None:
        store = ArtifactStore(uri)
        self.ids = ids
        self._metrics = metrics
        self._version = metrics.model.version
        self._calibration = calibration
        self._predictions = _ParquetLog(
            store, PREDICTIONS_FOLDER, self._prediction_table, metrics,
            max_pending_rows=max_pending_rows, flush_seconds=flush_seconds,
        )  # fmt: skip
        self._labels = _ParquetLog(
            store, LABELS_FOLDER, _label_table, metrics,
            max_pending_rows=max_pending_rows, flush_seconds=flush_seconds,
        )  # fmt: skip
        self._seen: OrderedDict[str, None] = OrderedDict()

    def start(self) -> None:
        """Start both logs' flushing tasks."""
        self._predictions.start()
        self._labels.start()

    async def stop(self) -> None:
        """Write what both logs hold, then stop."""
        await self._predictions.stop()
        await self._labels.stop()

    def record(
        self,
        request_ids: Sequence[str],
        rows: Sequence[int],
        outputs: Sequence[Any],
        *,
        classifier: bool,
    ) -> None:
        """Record one onnxruntime call's predicted rows: its requests' ids and row counts, in
        the outputs' order (the calibration is applied at flush time)."""
        first = outputs[0]
        total = len(first)
        if not self._predictions.room(total):
            return
        pending = self._predictions.pending
        pending.request_id.extend(request_ids)
        pending.rows.extend(rows)
        # The ids were issued here: no need for issued_at's guard against a malformed one.
        pending.time_ms.extend([int(rid.partition("-")[0], 16) for rid in request_ids])
        pending.total += total
        if not classifier:
            pending.value.extend(first.ravel().tolist())
            return
        pending.label.extend(first.tolist())
        if len(outputs) > 1:
            # Calls are recorded merged (serving.batching): one reduction over all their rows.
            pending.top.extend(outputs[1].max(axis=1).tolist())

    @staticmethod
    def _request(pending: _Pending, request_id: str, rows: int, time_ms: int) -> None:
        pending.request_id.append(request_id)
        pending.rows.append(rows)
        pending.time_ms.append(time_ms)
        pending.total += rows

    def _prediction_table(self, pending: _Pending) -> pa.Table:
        confidence = (
            pa.array(self.confidence(np.asarray(pending.top)), pa.float32())
            if len(pending.top) == pending.total
            else pa.nulls(pending.total, pa.float32())
        )
        times = np.repeat(np.asarray(pending.time_ms, dtype=np.int64), pending.rows)
        columns = [
            pending.per_row(pending.request_id),
            pa.array(pending.row_numbers()),
            pa.array(times, pa.timestamp("ms", tz="UTC")),
            pa.array([self._version] * pending.total, pa.string()),
            pending.texts_or_nulls(),
            pending.values_or_nulls(),
            confidence,
        ]
        return pa.Table.from_arrays(columns, schema=PREDICTION_SCHEMA)

    def confidence(self, top_probability: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The calibrated probability that the predicted class is right (CBPE's per-row term)."""
        return calibrated_confidence(top_probability, self._calibration)

    def accept(self, pairs: Sequence[tuple[str, list[Any]]]) -> tuple[int, int]:
        """Log the labels of every pair (all checked first: one bad id refuses the whole body).

        Returns the labelled rows accepted and how many pairs repeated an id this worker
        already took labels for (duplicates are logged too: the evaluator keeps the last).
        """
        checked = [(rid, self.ids.verify(rid), labels) for rid, labels in pairs]
        if not self._labels.room(sum(len(labels) for _, _, labels in checked)):
            raise LabelsBacklogged(
                "the label log is full (the artifact store is not keeping up); retry later"
            )
        now_ms = int(time.time() * 1000)
        pending = self._labels.pending
        total = duplicates = 0
        for request_id, issued_ms, labels in checked:
            self._request(pending, request_id, len(labels), issued_ms)
            pending.labelled_ms.append(now_ms)
            if labels and isinstance(labels[0], float):
                pending.value.extend(labels)
            else:
                pending.label.extend(labels)
            total += len(labels)
            if request_id in self._seen:
                duplicates += 1
            self._seen[request_id] = None
            if len(self._seen) > _SEEN_IDS:
                self._seen.popitem(last=False)
        self._metrics.observe_labels("accepted", total)
        if duplicates:
            self._metrics.observe_labels("duplicate", duplicates)
        return total, duplicates


def _label_table(pending: _Pending) -> pa.Table:
    stamp = pa.timestamp("ms", tz="UTC")
    columns = [
        pending.per_row(pending.request_id),
        pa.array(pending.row_numbers()),
        pa.array(np.repeat(np.asarray(pending.time_ms, dtype=np.int64), pending.rows), stamp),
        pa.array(np.repeat(np.asarray(pending.labelled_ms, dtype=np.int64), pending.rows), stamp),
        pending.texts_or_nulls(),
        pending.values_or_nulls(),
    ]
    return pa.Table.from_arrays(columns, schema=LABEL_SCHEMA)
