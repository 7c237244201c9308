"""What recording every prediction costs a request: in process, and through the real server.

Two figures, because the request path is shared with the serving benchmarks:

1. **In process**: microseconds per request for what the label path adds to it,
   issuing and signing the id and appending the rows to the prediction log's buffer
   (`serving.labels`), for 1-row and 10-row requests; the Parquet write happens in a
   background task and is timed apart (rows per second).
2. **Through the server**: the serving benchmark's own server and load generator
   (`benchmarks/serving/bench_self.py`: iris, one worker, one thread, concurrency 16),
   once without and once with ``--labels-uri``, alternating `--rounds` times so load
   from other processes hits both alike; req/s and p50/p99 of each.

    .venv/bin/python benchmarks/labels/bench_record.py [--seconds 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.serving.bench_self import (  # the serving benchmark's server and client
    build_models,
    free_port,
    measure,
    start_server,
    stop_server,
)

from mlops_operator.modelcard import Calibration
from mlops_operator.serving.labels import LabelRecorder, RequestIds


def _metrics() -> Any:
    """What the recorder asks of the server's metrics: the version, and two counters."""
    return SimpleNamespace(
        model=SimpleNamespace(version="1"),
        observe_side_channel=lambda *_: None,
        observe_labels=lambda *_: None,
    )


def in_process(rows: int, requests: int, root: Path) -> tuple[float, float]:
    """(CPU µs per request added, rows written per second of CPU by one flush).

    CPU time of this process, not wall time: other processes' load does not count.
    """
    ids = RequestIds(b"k" * 32, worker=0, retention_seconds=7 * 86400)
    calibration = Calibration(probabilities=[0.3, 0.6, 1.0], accuracy=[0.2, 0.7, 0.99], rows=100)
    recorder = LabelRecorder(str(root), _metrics(), ids, calibration=calibration)
    labels = np.zeros(rows, dtype=np.int64)
    probabilities = np.full((rows, 3), 1 / 3, dtype=np.float32)
    began = time.process_time()
    for _ in range(requests):
        recorder.record([ids.issue()], [rows], [labels, probabilities], classifier=True)
    per_request = (time.process_time() - began) / requests * 1e6
    began = time.process_time()
    asyncio.run(recorder._predictions.flush())
    return per_request, rows * requests / (time.process_time() - began)


def through_server(seconds: float, rounds: int) -> dict[str, list[tuple[float, float, float]]]:
    results: dict[str, list[tuple[float, float, float]]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory() as root:
        model_dir, row = build_models(Path(root))["iris"]
        body = json.dumps({"rows": [row]})
        for _ in range(rounds):
            for mode in ("off", "on"):
                flags = ["--workers", "1", "--intra-op-threads", "1"]
                if mode == "on":
                    flags += ["--labels-uri", str(Path(root) / f"labels-{time.time_ns()}")]
                port = free_port()
                server = start_server(model_dir, port, tuple(flags))
                try:
                    url = f"http://127.0.0.1:{port}/predict"
                    measure(url, body, 16, 1.0)  # warm-up
                    r = measure(url, body, 16, seconds)
                    results[mode].append((r.requests_per_second, r.p50_ms, r.p99_ms))
                finally:
                    stop_server(server)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        for rows in (1, 10):
            cost, written = in_process(rows, 50_000, Path(root) / str(rows))
            print(f"in process, {rows:>2}-row requests: {cost:.1f} CPU-µs added per request;"
                  f" the background flush writes {written:,.0f} rows per CPU-second")  # fmt: skip
    results = through_server(args.seconds, args.rounds)
    for mode, label in (("off", "without labels"), ("on", "with --labels-uri")):
        rps = statistics.median(r[0] for r in results[mode])
        p50 = statistics.median(r[1] for r in results[mode])
        p99 = statistics.median(r[2] for r in results[mode])
        print(f"server, iris, 1 worker, concurrency 16, {label}: {rps:,.0f} req/s,"
              f" p50 {p50:.2f} ms, p99 {p99:.2f} ms (median of {args.rounds})")  # fmt: skip


if __name__ == "__main__":
    main()
