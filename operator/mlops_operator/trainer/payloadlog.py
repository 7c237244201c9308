"""Training data from an inference server's payload log: logged requests joined with their labels.

The server (``mlops_operator.serving.sidechannels``) writes two kinds of JSON lines:
each sampled request with its response, and later the true labels that
``/feedback`` received for it. Joined by ``request_id``, they are the rows the
model actually saw in production with the answer it should have given, which is
what a model retrained after drift must learn from.

The trainer reads them through a ``payloadlog+<root>?target=…`` dataset URI
(:mod:`.payloadlog_uri`). Only requests logged within the window count; fewer
labelled rows than ``minRows`` is ``DatasetNotFound`` (the TrainingJob reports
``DatasetUnavailable``). Rows come out sorted by time and request id, so the same
log gives the same data version.
"""

from __future__ import annotations

import json
import logging
import posixpath
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from mlops_operator.storage import ArtifactStore, StorageError
from mlops_operator.trainer.errors import Reason, TrainingError
from mlops_operator.trainer.payloadlog_uri import parse_payload_log_uri

__all__ = ["JoinedLog", "join_records", "load_payload_log"]

_REQUEST_ENDPOINTS = frozenset({"predict", "v2_infer"})
_log = logging.getLogger(__name__)


@dataclass
class JoinedLog:
    """The labelled rows of a log, and what was left out (for the trainer's log)."""

    features: list[str]
    rows: list[tuple[str, str, list[Any], Any]] = field(default_factory=list)
    """(time, request id, feature values, label) per labelled row."""
    unlabelled: int = 0
    unreadable: int = 0

    def frame(self, target: str) -> pd.DataFrame:
        """The rows as a DataFrame: the features in logged order, then `target`."""
        ordered = sorted(self.rows, key=lambda row: (row[0], row[1]))
        frame = pd.DataFrame([values for _, _, values, _ in ordered], columns=self.features)
        frame[target] = _typed_labels([label for _, _, _, label in ordered])
        return frame


def load_payload_log(uri: str, *, now: datetime | None = None) -> pd.DataFrame:
    """The labelled rows of the payload log `uri` names (see the module's docstring)."""
    try:
        query = parse_payload_log_uri(uri)
    except ValueError as error:
        raise TrainingError(Reason.INVALID_DATASET, str(error)) from error
    since = None
    if query.window_seconds is not None:
        since = (now or datetime.now(UTC)) - timedelta(seconds=query.window_seconds)
    try:
        joined = join_records(_records(query.root, since), since=since)
    except StorageError as error:
        raise TrainingError(Reason.DATASET_NOT_FOUND, f"payload log {uri}: {error}") from error
    _log.info(
        "payload log %s: %d labelled rows, %d logged rows without labels, %d unreadable records",
        query.root,
        len(joined.rows),
        joined.unlabelled,
        joined.unreadable,
    )
    if len(joined.rows) < query.min_rows:
        window = f" in the last {query.window_seconds:g} s" if since is not None else ""
        raise TrainingError(
            Reason.DATASET_NOT_FOUND,
            f"payload log {query.root} has {len(joined.rows)} labelled rows{window}; at least"
            f" {query.min_rows} are needed (send labels to /feedback by request id, or lower"
            " minRows)",
        )
    return joined.frame(query.target)


def _records(root: str, since: datetime | None) -> Iterator[dict[str, Any]]:
    # The store lists keys under a folder: open the root's parent and list the root's name.
    parent, name = posixpath.split(root.rstrip("/"))
    store = ArtifactStore(parent)
    first_day = since.strftime("%Y-%m-%d") if since is not None else ""
    for key in store.keys(name):
        # Keys are <model>/<version>/<YYYY-MM-DD>/<file>.jsonl: whole days before the window are skipped.
        if not key.endswith(".jsonl") or posixpath.basename(posixpath.dirname(key)) < first_day:
            continue
        for line in store.read_bytes(key).splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                # A writer killed mid-line leaves a torn last line; the rest of the file is good.
                continue
            if isinstance(record, dict):
                yield record


def join_records(records: Iterable[Mapping[str, Any]], *, since: datetime | None) -> JoinedLog:
    """Requests joined with their feedback by request id; requests before `since` left out."""
    requests: dict[str, tuple[str, list[str], list[list[Any]]]] = {}
    labels: dict[str, list[Any]] = {}
    unreadable = 0
    for record in records:
        request_id, endpoint = record.get("request_id"), record.get("endpoint")
        if not isinstance(request_id, str):
            unreadable += 1
        elif endpoint == "feedback" and isinstance(record.get("labels"), list):
            labels[request_id] = record["labels"]
        elif endpoint in _REQUEST_ENDPOINTS and _within(record.get("time"), since):
            decoded = _decode_request(record)
            if decoded is None:
                unreadable += 1
            else:
                requests[request_id] = (str(record["time"]), *decoded)
    features = _common_features(requests.values())
    joined = JoinedLog(features=features, unreadable=unreadable)
    for request_id, (time, names, rows) in requests.items():
        truth = labels.get(request_id)
        if truth is None or len(truth) != len(rows):
            joined.unlabelled += len(rows)
            continue
        if names != features:
            joined.unreadable += 1
            continue
        joined.rows.extend(
            (time, request_id, row, label) for row, label in zip(rows, truth, strict=True)
        )
    return joined


def _within(time: object, since: datetime | None) -> bool:
    if not isinstance(time, str):
        return False
    if since is None:
        return True
    try:
        return datetime.fromisoformat(time) >= since
    except ValueError:
        return False


def _common_features(requests: Iterable[tuple[str, list[str], list[list[Any]]]]) -> list[str]:
    # Versions of one model share their features; should they ever differ, the most logged wins.
    counts: Counter[tuple[str, ...]] = Counter()
    for _, names, rows in requests:
        counts[tuple(names)] += len(rows)
    return list(counts.most_common(1)[0][0]) if counts else []


def _decode_request(record: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]] | None:
    """The feature names and rows of a logged request, or None if it cannot be read."""
    names, body = record.get("features"), record.get("request")
    if not isinstance(names, list) or not names or not isinstance(body, dict):
        return None
    names = [str(name) for name in names]
    if record.get("endpoint") != "predict":
        return _decode_v2(names, body)
    rows = body.get("rows")
    if not isinstance(rows, list):
        return None
    decoded: list[list[Any]] = []
    for row in rows:
        values = _row(names, row)
        if values is None:
            return None
        decoded.append(values)
    return names, decoded


def _row(names: Sequence[str], row: object) -> list[Any] | None:
    if isinstance(row, list) and len(row) == len(names):
        return row
    if isinstance(row, dict) and set(row) == set(names):
        return [row[name] for name in names]
    return None


def _decode_v2(
    names: list[str], body: Mapping[str, Any]
) -> tuple[list[str], list[list[Any]]] | None:
    # One [rows, features] tensor is read; models with one input per feature group are skipped.
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        return None
    shape, data = inputs[0].get("shape"), inputs[0].get("data")
    if shape is None or len(shape) != 2 or shape[1] != len(names) or not isinstance(data, list):
        return None
    flat = [v for row in data for v in row] if data and isinstance(data[0], list) else data
    width = len(names)
    if len(flat) != shape[0] * width:
        return None
    return names, [flat[i : i + width] for i in range(0, len(flat), width)]


def _typed_labels(labels: list[Any]) -> list[Any]:
    # The server reports class labels as strings; integer classes go back to integers so a
    # retrained model keeps the champion's output type (int64 labels, not strings).
    try:
        as_int = [int(label) for label in labels]
    except (TypeError, ValueError):
        return labels
    return (
        as_int
        if all(str(i) == str(label) for i, label in zip(as_int, labels, strict=True))
        else labels
    )
