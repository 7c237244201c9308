"""The windowed join of the prediction and label logs, in DuckDB.

Both logs are Parquet, Hive-partitioned by day (``serving/labels.py``). One SQL
statement reads the days of the retention (the ``date`` partition prunes older
files unread), keeps the **latest** label of each (request id, row) (so a
repeated label is idempotent and a corrected one wins), left-joins the
predictions on (request id, row), and aggregates per version and window:
predicted rows, labelled rows, correct ones, calibrated confidence sums, squared
and absolute errors, duplicate label rows, and the confusion counts F1 needs.
One pass aggregates by version, window, predicted and true class; Python only sums
those few rows (a handful of classes squared per window); DuckDB streams the
files and spills to disk past its memory limit, which is how 10 million
predictions join in seconds within a bounded footprint
(``benchmarks/labels/bench_join.py``).
"""

from __future__ import annotations

import datetime as dt
import posixpath
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb

from mlops_operator.evaluator.windows import WindowStats

__all__ = ["JoinTotals", "connect", "join_windows"]

_PREDICTIONS = "predictions"
_LABELS = "labels"


@dataclass(frozen=True)
class JoinTotals:
    """Counts over the whole retention that are not per window."""

    labels: int
    unmatched_labels: int
    """Labels whose prediction is not in the log (never recorded, or older than the retention)."""


def connect(*, memory_limit: str = "1GB", threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a bounded footprint (it spills past `memory_limit`)."""
    con = duckdb.connect(":memory:")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    # Spills go to the scratch volume: a pod's root filesystem is read-only.
    spill = Path(tempfile.gettempdir()) / "duckdb"
    con.execute(f"SET temp_directory = '{spill}'")
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET enable_progress_bar = false")  # it writes to stdout, the pod's log
    if threads is not None:
        con.execute(f"SET threads = {int(threads)}")
    return con


def _glob(con: duckdb.DuckDBPyConnection, root: str, folder: str) -> str | None:
    """The glob DuckDB reads `folder`'s files with, or None when it holds no file yet."""
    parts = urlsplit(root)
    if parts.scheme in ("", "file"):
        base = Path(parts.path if parts.scheme else root)
        if not any((base / folder).glob("date=*/*.parquet")):
            return None
        return str(base / folder / "date=*" / "*.parquet")
    # Any other fsspec store (s3://, memory://...): DuckDB reads through fsspec.
    import fsspec

    filesystem = fsspec.filesystem(parts.scheme)
    # fsspec hands back one cached instance per store, and s3fs keeps its listings for ever by
    # default: without this, files written after the first join (a new window's, a new
    # version's) would never be seen.
    filesystem.invalidate_cache()
    # DuckDB refuses to register a protocol twice on one connection, and every join after the
    # first would fail on it; fsspec's instance is the same object each time, so the one
    # registered at the first join is the one just invalidated.
    protocols = filesystem.protocol
    name = protocols if isinstance(protocols, str) else protocols[0]
    if not con.filesystem_is_registered(name):
        con.register_filesystem(filesystem)
    pattern = posixpath.join(root.rstrip("/"), folder, "date=*", "*.parquet")
    return pattern if filesystem.glob(pattern) else None


def join_windows(
    con: duckdb.DuckDBPyConnection,
    root: str,
    *,
    window_ms: int,
    since_ms: int,
) -> tuple[list[WindowStats], JoinTotals]:
    """Every window (of every version) with predictions since `since_ms`, and the totals."""
    predictions = _glob(con, root, _PREDICTIONS)
    if predictions is None:
        return [], JoinTotals(0, 0)
    labels = _glob(con, root, _LABELS)
    since_day = dt.datetime.fromtimestamp(since_ms / 1000, dt.UTC).strftime("%Y-%m-%d")
    since = dt.datetime.fromtimestamp(since_ms / 1000, dt.UTC)
    read = "read_parquet(?, hive_partitioning = true, union_by_name = true)"
    latest_labels = (
        f"""SELECT request_id, "row", arg_max(label, labelled_at) AS label,
                   arg_max(value, labelled_at) AS value, count(*) AS copies
            FROM {read} WHERE "date" >= ? AND predicted_at >= ?
            GROUP BY request_id, "row" """
        if labels is not None
        else """SELECT NULL::VARCHAR AS request_id, NULL::INTEGER AS "row", NULL::VARCHAR AS label,
                   NULL::DOUBLE AS value, NULL::BIGINT AS copies WHERE false"""
    )
    params: list[Any] = [predictions, since_day, since]
    if labels is not None:
        params += [labels, since_day, since]
    # One pass: the join aggregated by (version, window, predicted class, true class). The
    # per-window figures are sums over the class pairs (a few rows), the confusion counts are
    # the rows themselves, and labels without a prediction land in the version-less group.
    groups = con.execute(
        f"""WITH p AS (
                SELECT request_id, "row", predicted_at, model_version, predicted_label,
                       predicted_value, confidence
                FROM {read} WHERE "date" >= ? AND predicted_at >= ?
            ), l AS ({latest_labels}),
            j AS (
                SELECT p.model_version,
                       floor(epoch_ms(p.predicted_at) / {int(window_ms)})::BIGINT AS w,
                       p.predicted_label, p.predicted_value, p.confidence,
                       l.label, l.value, l.copies,
                       (l.label IS NOT NULL OR l.value IS NOT NULL) AS labelled
                FROM p FULL OUTER JOIN l USING (request_id, "row")
            )
            SELECT model_version, w, predicted_label, label,
                   count(*), count(*) FILTER (WHERE labelled),
                   coalesce(sum(confidence), 0), count(confidence),
                   coalesce(sum(confidence) FILTER (WHERE labelled), 0),
                   coalesce(sum((predicted_value - value) ^ 2), 0),
                   coalesce(sum(abs(predicted_value - value)), 0),
                   coalesce(sum(copies - 1), 0)
            FROM j GROUP BY ALL""",
        params,
    ).fetchall()
    sums: dict[tuple[str, int], list[float]] = {}
    confusion: dict[tuple[str, int], dict[tuple[str, str], int]] = defaultdict(dict)
    labels_total = unmatched = 0
    for version, window, predicted, actual, *figures in groups:
        labelled = int(figures[1])
        labels_total += labelled
        if version is None:
            unmatched += labelled
            continue
        key = (version, window)
        if key not in sums:
            sums[key] = [0.0] * 9
        correct = labelled if predicted is not None and predicted == actual else 0
        for index, value in enumerate([*figures[:2], correct, *figures[2:]]):
            sums[key][index] += float(value)
        if predicted is not None and actual is not None:
            confusion[key][(predicted, actual)] = labelled
    windows = [
        WindowStats(
            version=version,
            start_ms=window * window_ms,
            end_ms=(window + 1) * window_ms,
            predictions=int(total),
            labelled=int(labelled),
            correct=int(correct),
            confidence_sum=confidence,
            confident_rows=int(confident),
            labelled_confidence_sum=labelled_confidence,
            squared_error=squared,
            absolute_error=absolute,
            duplicates=int(duplicates),
            confusion=confusion.get((version, window), {}),
        )
        for (version, window), (total, labelled, correct, confidence, confident,
                                labelled_confidence, squared, absolute, duplicates) in sums.items()
    ]  # fmt: skip
    totals = JoinTotals(labels_total, unmatched)
    return windows, totals
