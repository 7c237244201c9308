"""The evaluator's windowed join at scale: 10 million logged predictions, 5 million labels.

A deployment serving 10,000 predictions a second logs 864 million rows a day; the
join must stay a matter of seconds per evaluation window of data. This benchmark
writes a day of synthetic logs in the servers' exact layout and schemas
(``serving/labels.py``: Hive-partitioned Parquet, zstd, one file per flush and
writer), then times one `evaluator.join.join_windows` over all of it (hourly
windows) in a fresh process and records that process's peak memory (its maximum
resident set). Target on this machine: under 30 s and under 2 GiB.

    .venv/bin/python benchmarks/labels/bench_join.py [--predictions 10000000]
        [--labels 5000000] [--files 40] [--memory-limit 1GB] [--threads N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlops_operator.serving.labels import LABEL_SCHEMA, PREDICTION_SCHEMA

DAY_MS = 24 * 3600 * 1000
START_MS = 1_800_000_000_000 - 1_800_000_000_000 % DAY_MS
CLASSES = np.array(["setosa", "versicolor", "virginica"])


def _ids(first: int, count: int) -> pa.Array:
    numbers = np.arange(first, first + count)
    # The servers' id shape: <ms>-<nonce>-<worker>-<n>.<rows>.<tag>, about 50 characters.
    return pa.array([f"18c5d2f3a1b-9f1e2d3c-1-{n:x}.1.a1b2c3d4e5f60718293a" for n in numbers])


def write_logs(root: Path, predictions: int, labels: int, files: int, seed: int) -> None:
    """A day of predictions (`files` files) and labels for the first `labels` of them."""
    rng = np.random.default_rng(seed)
    per_file = predictions // files
    labelled_per_file = labels // files
    day = f"date={time.strftime('%Y-%m-%d', time.gmtime(START_MS / 1000))}"
    for index in range(files):
        first = index * per_file
        times = np.sort(rng.integers(START_MS, START_MS + DAY_MS, per_file))
        predicted = rng.integers(0, 3, per_file)
        confidence = rng.uniform(0.4, 1.0, per_file).astype(np.float32)
        ids = _ids(first, per_file)
        table = pa.table({
            "request_id": ids,
            "row": pa.array(np.zeros(per_file, dtype=np.int32)),
            "predicted_at": pa.array(times, type=pa.timestamp("ms", tz="UTC")),
            "model_version": pa.array(np.full(per_file, "3")),
            "predicted_label": pa.array(CLASSES[predicted]),
            "predicted_value": pa.nulls(per_file, pa.float64()),
            "confidence": pa.array(confidence),
        }, schema=PREDICTION_SCHEMA)  # fmt: skip
        folder = root / "predictions" / day
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / f"writer-{index:04d}.parquet", compression="zstd")
        # Labels for the first rows of each file, right 80 % of the time, written in other files.
        take = labelled_per_file
        truth = np.where(rng.uniform(size=take) < 0.8, predicted[:take], (predicted[:take] + 1) % 3)
        label_table = pa.table({
            "request_id": ids.slice(0, take),
            "row": pa.array(np.zeros(take, dtype=np.int32)),
            "predicted_at": pa.array(times[:take], type=pa.timestamp("ms", tz="UTC")),
            "labelled_at": pa.array(times[:take] + 3_600_000, type=pa.timestamp("ms", tz="UTC")),
            "label": pa.array(CLASSES[truth]),
            "value": pa.nulls(take, pa.float64()),
        }, schema=LABEL_SCHEMA)  # fmt: skip
        folder = root / "labels" / day
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(label_table, folder / f"labeller-{index:04d}.parquet", compression="zstd")


_JOIN = """
import json, resource, sys, time
from mlops_operator.evaluator.join import connect, join_windows
from mlops_operator.evaluator.windows import judge, merge
root, memory, threads, start, day = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
con = connect(memory_limit=memory, threads=int(threads) if threads != "0" else None)
began, cpu = time.perf_counter(), time.process_time()
windows, totals = join_windows(con, root, window_ms=3_600_000, since_ms=start)
seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
judged = judge(windows, now_ms=start + day, min_coverage=0.4, max_delay_ms=day)
lifetime = merge(windows)
print(json.dumps({
    "seconds": seconds, "cpu_seconds": cpu, "windows": len(windows), "labels": totals.labels,
    "unmatched": totals.unmatched_labels, "predictions": lifetime.predictions,
    "labelled": lifetime.labelled, "accuracy": lifetime.accuracy,
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--predictions", type=int, default=10_000_000)
    parser.add_argument("--labels", type=int, default=5_000_000)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--memory-limit", default="1GB", help="DuckDB's memory limit")
    parser.add_argument("--threads", type=int, default=0, help="DuckDB threads (0: all CPUs)")
    parser.add_argument("--keep", type=Path, help="write the logs here and keep them")
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-join-"))
    try:
        began = time.perf_counter()
        if not (root / "predictions").exists():
            write_logs(root, args.predictions, args.labels, args.files, args.seed)
        size = sum(p.stat().st_size for p in root.rglob("*.parquet"))
        print(f"logs: {args.predictions:,} predictions, {args.labels:,} labels in"
              f" {2 * args.files} Parquet files, {size / 2**20:.0f} MiB"
              f" (written in {time.perf_counter() - began:.1f} s)")  # fmt: skip
        proc = subprocess.run(
            [sys.executable, "-c", _JOIN, str(root), args.memory_limit, str(args.threads),
             str(START_MS), str(DAY_MS)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        figures = json.loads(proc.stdout.strip().splitlines()[-1])
        child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        load = os.getloadavg()[0]
        print(f"join: {figures['seconds']:.1f} s ({figures['cpu_seconds']:.1f} CPU-seconds on"
              f" {os.cpu_count()} CPUs, load average {load:.1f}), peak RSS {figures['peak_rss_mib']:.0f} MiB"
              f" (children max {child:.0f} MiB), {figures['windows']} hourly windows,"
              f" {figures['labelled']:,} of {figures['predictions']:,} rows labelled,"
              f" {figures['unmatched']} unmatched, accuracy {figures['accuracy']:.4f}")  # fmt: skip
        ok = figures["seconds"] < 30 and figures["peak_rss_mib"] < 2048
        print("target (under 30 s and under 2 GiB):", "met" if ok else "MISSED")
        assert figures["labelled"] == args.labels // args.files * args.files
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
