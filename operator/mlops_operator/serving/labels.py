"""Ground truth that survives restarts and scale: signed request ids, and the prediction and label logs.

Labels come minutes to days after the prediction, from another system, on a new
connection, to whichever replica and worker the Service picks, often after a
rollout replaced every pod. Nothing about a prediction may therefore live only in
the memory of the worker that answered. Three parts make that so:

- **Signed request ids.** An id carries the prediction's time and row count and an
  HMAC tag made with the deployment's key (``labels_key``, from a Secret the
  operator creates). Any worker of any replica, even one started after the
  prediction, checks a label's id without memory or I/O: a forged or mistyped id
  is 404, an id older than the retention is 410, a label count other than the
  rows predicted is 400.
- **The prediction log.** Every answered inference request leaves one small record
  per row (id, row, time, version, predicted class or value, and for classifiers
  the calibrated confidence used to estimate accuracy before labels arrive),
  whatever the payload log samples. Records are appended to an in-memory buffer
  (a few list appends per request) and written as Parquet files every few
  seconds by a background task, so the request path never waits on the store.
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
from collections.abc import Sequence
from dataclasses import dataclass, field
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
    "IssuedId",
    "LabelRecorder",
    "RequestIds",
    "calibrated_confidence",
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
_SEEN_IDS = 100_000  # ids this worker took labels for, to count duplicates early


@dataclass
class IssuedId:
    """A request's id: plain while it runs, signed with its row count once it predicted."""

    base: str
    issued_ms: int
    id: str = field(init=False)

    def __post_init__(self) -> None:
        self.id = self.base


class RequestIds:
    """Issues request ids and checks the ids labels name, statelessly (module docstring)."""

    def __init__(self, key: bytes, *, worker: int, retention_seconds: float) -> None:
        self._key = key
        # A random nonce per process: ids stay unique across workers, replicas and restarts.
        self._prefix = f"{os.urandom(4).hex()}-{worker:x}-"
        self._counter = itertools.count(1)
        self.retention_ms = int(retention_seconds * 1000)

    def issue(self) -> IssuedId:
        """A new id for a request arriving now."""
        now = int(time.time() * 1000)
        return IssuedId(f"{now:x}-{self._prefix}{next(self._counter):x}", now)

    def seal(self, issued: IssuedId, rows: int) -> str:
        """Sign `issued` for `rows` predicted rows; the signed form is the id clients get."""
        body = f"{issued.base}.{rows:x}"
        issued.id = f"{body}.{self._tag(body)}"
        return issued.id

    def _tag(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()[:_TAG_HEX]

    def verify(self, request_id: str, *, now_ms: int | None = None) -> tuple[int, int]:
        """``(issued_ms, rows)`` of a signed id; UnknownRequestId or ExpiredRequestId otherwise."""
        body, _, tag = request_id.rpartition(".")
        base, _, rows_hex = body.rpartition(".")
        issued_hex = base.partition("-")[0]
        try:
            rows, issued_ms = int(rows_hex, 16), int(issued_hex, 16)
        except ValueError:
            rows = issued_ms = -1
        if rows < 1 or not hmac.compare_digest(tag, self._tag(body)):
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
        return issued_ms, rows


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


class _ParquetLog:
    """Rows buffered in memory, written as one Parquet file per flush (never blocking a caller)."""

    def __init__(
        self,
        store: ArtifactStore,
        folder: str,
        schema: pa.Schema,
        metrics: ServingMetrics,
        *,
        max_pending_rows: int,
        flush_seconds: float,
    ) -> None:
        self._store = store
        self._folder = folder
        self._schema = schema
        self._metrics = metrics
        self._max_rows = max_pending_rows
        self._flush_seconds = flush_seconds
        self._chunks: list[dict[str, Any]] = []
        self._pending_rows = 0
        self._files = itertools.count(1)
        self._writer = f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the flushing task on the running loop."""
        name = f"{self._folder}-log"
        self._task = asyncio.get_running_loop().create_task(self._flush_forever(), name=name)

    def add(self, chunk: dict[str, Any], rows: int) -> bool:
        """Queue `rows` rows (a dict of columns); False (counted) when the buffer is full."""
        if self._pending_rows + rows > self._max_rows:
            self._metrics.observe_side_channel(self._folder, "dropped", rows)
            return False
        self._chunks.append(chunk)
        self._pending_rows += rows
        return True

    async def stop(self) -> None:
        """Write what is pending, then stop."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()

    async def flush(self) -> None:
        """Write the pending rows to a new Parquet file (kept in memory if the store fails)."""
        if not self._chunks:
            return
        chunks, rows = self._chunks, self._pending_rows
        self._chunks, self._pending_rows = [], 0
        day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
        key = f"{self._folder}/date={day}/{self._writer}-{next(self._files):06d}.parquet"
        try:
            await asyncio.to_thread(self._write, key, chunks)
        except (StorageError, InvalidKeyError, OSError, pa.ArrowException) as error:
            log.warning("%s log: cannot write %s: %s", self._folder, key, error)
            self._metrics.observe_side_channel(self._folder, "failed", rows)
            if self._pending_rows + rows <= self._max_rows:
                # Kept for the next flush: a store that is down for a while loses nothing.
                self._chunks[:0] = chunks
                self._pending_rows += rows
            return
        self._metrics.observe_side_channel(self._folder, "written", rows)

    def _write(self, key: str, chunks: list[dict[str, Any]]) -> None:
        columns = {
            name: pa.concat_arrays([pa.array(c[name], type=self._schema.field(name).type)
                                    for c in chunks])
            for name in self._schema.names
        }  # fmt: skip
        table = pa.Table.from_pydict(columns, schema=self._schema)
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        self._store.put_bytes(key, buffer.getvalue())

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            await self.flush()


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
            store, PREDICTIONS_FOLDER, PREDICTION_SCHEMA, metrics,
            max_pending_rows=max_pending_rows, flush_seconds=flush_seconds,
        )  # fmt: skip
        self._labels = _ParquetLog(
            store, LABELS_FOLDER, LABEL_SCHEMA, metrics,
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

    def record_classes(
        self, issued: IssuedId, labels: npt.NDArray[Any], probabilities: npt.NDArray[Any] | None
    ) -> str:
        """Record a classifier's predicted rows; the request's signed id."""
        confidence = None
        if probabilities is not None and len(labels):
            top = np.asarray(probabilities, dtype=np.float64).max(axis=1)
            confidence = self.confidence(top)
        return self._record(
            issued, len(labels), [str(v) for v in labels.tolist()], None, confidence
        )

    def record_values(self, issued: IssuedId, values: npt.NDArray[Any]) -> str:
        """Record a regressor's predicted rows; the request's signed id."""
        flat = np.asarray(values, dtype=np.float64).ravel()
        return self._record(issued, len(flat), None, flat, None)

    def _record(
        self,
        issued: IssuedId,
        rows: int,
        labels: list[str] | None,
        values: npt.NDArray[np.float64] | None,
        confidence: npt.NDArray[np.float64] | None,
    ) -> str:
        request_id = self.ids.seal(issued, rows)
        empty = [None] * rows
        self._predictions.add(
            {
                "request_id": [request_id] * rows,
                "row": range(rows),
                "predicted_at": [issued.issued_ms] * rows,
                "model_version": [self._version] * rows,
                "predicted_label": empty if labels is None else labels,
                "predicted_value": empty if values is None else values,
                "confidence": empty if confidence is None else confidence,
            },
            rows,
        )
        return request_id

    def confidence(self, top_probability: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The calibrated probability that the predicted class is right (CBPE's per-row term)."""
        return calibrated_confidence(top_probability, self._calibration)

    def accept(self, pairs: Sequence[tuple[str, list[Any]]]) -> tuple[int, int]:
        """Log the labels of every pair (all checked first: one bad id refuses the whole body).

        Returns the labelled rows accepted and how many pairs repeated an id this worker
        already took labels for (duplicates are logged too: the evaluator keeps the last).
        """
        checked = []
        for request_id, labels in pairs:
            issued_ms, rows = self.ids.verify(request_id)
            if len(labels) != rows:
                raise InvalidInput(
                    f"request {request_id!r} predicted {rows} rows; expected {rows} labels, got"
                    f" {len(labels)}"
                )
            checked.append((request_id, issued_ms, labels))
        now_ms = int(time.time() * 1000)
        total = duplicates = 0
        for request_id, issued_ms, labels in checked:
            rows = len(labels)
            regression = bool(labels) and isinstance(labels[0], float)
            if not self._labels.add(
                {
                    "request_id": [request_id] * rows,
                    "row": range(rows),
                    "predicted_at": [issued_ms] * rows,
                    "labelled_at": [now_ms] * rows,
                    "label": [None] * rows if regression else labels,
                    "value": labels if regression else [None] * rows,
                },
                rows,
            ):
                raise LabelsBacklogged(
                    "the label log is full (the artifact store is not keeping up); retry later"
                )
            total += rows
            if request_id in self._seen:
                duplicates += 1
            self._seen[request_id] = None
            if len(self._seen) > _SEEN_IDS:
                self._seen.popitem(last=False)
        self._metrics.observe_labels("accepted", total)
        if duplicates:
            self._metrics.observe_labels("duplicate", duplicates)
        return total, duplicates
