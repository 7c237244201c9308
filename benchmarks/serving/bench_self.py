"""Throughput and latency of our own inference server (`mlops serve`), bounded load.

Builds two real models (iris LogisticRegression; a 200-tree random forest on 30
features), starts the real server as a subprocess on a loopback port for each
configuration, and drives ``/predict`` with one row per request at concurrency
1, 16 and 64, printing req/s, p50 and p99. Validation, metrics and drift
counters are on, as in production. The load generator is ``wrk`` when installed
(``apt-get install wrk``), else a Python asyncio client, which itself tops out
at a few thousand req/s on this kind of machine, so its figures are a floor.

Run: ``.venv/bin/python benchmarks/serving/bench_self.py [--seconds 5] [--quick]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from sklearn.datasets import load_iris, make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.unit.serving.builders import export_model  # stands in for the trainer

CONCURRENCY = (1, 16, 64)


@dataclass(frozen=True)
class Config:
    label: str
    flags: tuple[str, ...]


@dataclass(frozen=True)
class Result:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


def build_models(root: Path) -> dict[str, tuple[Path, list[float]]]:
    iris = load_iris()
    export_model(
        LogisticRegression(max_iter=500),
        iris.data,
        iris.target,
        root / "iris",
        name="iris",
        feature_names=["sepal_length", "sepal_width", "petal_length", "petal_width"],
    )
    x, y = make_classification(n_samples=4000, n_features=30, n_informative=12, random_state=0)
    export_model(
        RandomForestClassifier(n_estimators=200, max_depth=12, random_state=0, n_jobs=1),
        x,
        y,
        root / "forest",
        name="forest",
        feature_names=[f"f{i}" for i in range(30)],
    )
    return {
        "iris": (root / "iris", iris.data[0].tolist()),
        "forest": (root / "forest", x[0].tolist()),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(model_dir: Path, port: int, flags: tuple[str, ...]) -> subprocess.Popen[str]:
    command = [
        sys.executable, "-m", "mlops_operator.cli", "serve", "--model-dir", str(model_dir),
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "WARNING", *flags,
    ]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError as error:
            if process.poll() is not None:
                stderr = process.stderr.read() if process.stderr else ""
                raise RuntimeError(f"server exited: {stderr}") from error
            time.sleep(0.05)
    raise RuntimeError("server did not start within 120 s")


def stop_server(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(60)


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '%s'
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%f %%f %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout))
end
"""


def run_wrk(url: str, body: str, concurrency: int, seconds: float) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % body)
    threads = min(2, concurrency)
    output = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "-s", script.name, url],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    ).stdout  # fmt: skip
    os.unlink(script.name)
    match = re.search(r"RESULT (\d+) (\d+) ([\d.]+) ([\d.]+) (\d+)", output)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    requests, micros, p50, p99, errors = match.groups()
    return Result(
        int(requests) / (int(micros) / 1e6), float(p50) / 1e3, float(p99) / 1e3, int(errors)
    )


async def run_python(url: str, body: str, concurrency: int, seconds: float) -> Result:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    payload = body.encode()

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with session.post(
                url, data=payload, headers={"Content-Type": "application/json"}
            ) as r:
                await r.read()
                errors += r.status != 200
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return Result(len(latencies) / elapsed, cuts[49] * 1e3, cuts[98] * 1e3, errors)


def measure(url: str, body: str, concurrency: int, seconds: float) -> Result:
    if shutil.which("wrk"):
        return run_wrk(url, body, concurrency, seconds)
    return asyncio.run(run_python(url, body, concurrency, seconds))


CONFIGS = {
    "iris": [
        Config("auto (1 worker per CPU)", ()),
        Config("1 worker, 1 thread", ("--workers", "1", "--intra-op-threads", "1")),
    ],
    "forest": [
        Config("1 worker, 1 thread, no batching", ("--workers", "1", "--intra-op-threads", "1", "--max-batch-rows", "1")),
        Config("1 worker, 1 thread, batching", ("--workers", "1", "--intra-op-threads", "1")),
        Config("1 worker, 2 threads, no batching", ("--workers", "1", "--intra-op-threads", "2", "--max-batch-rows", "1")),
        Config("1 worker, 2 threads, batching", ("--workers", "1", "--intra-op-threads", "2")),
        Config("2 workers, 1 thread, batching", ("--workers", "2", "--intra-op-threads", "1")),
    ],
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="load duration per point")
    parser.add_argument("--quick", action="store_true", help="only the first config per model")
    args = parser.parse_args()
    print(f"# {time.strftime('%Y-%m-%d')} {platform.node()} {platform.processor() or platform.machine()}"
          f", {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load generator: {'wrk' if shutil.which('wrk') else 'python asyncio'}")  # fmt: skip
    with tempfile.TemporaryDirectory() as root:
        models = build_models(Path(root))
        print("| model | configuration | concurrency | req/s | p50 ms | p99 ms | errors |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for model, (model_dir, row) in models.items():
            body = json.dumps({"rows": [row]})
            for config in CONFIGS[model][: 1 if args.quick else None]:
                port = free_port()
                server = start_server(model_dir, port, config.flags)
                try:
                    url = f"http://127.0.0.1:{port}/predict"
                    measure(url, body, 16, 1.0)  # warm-up
                    for concurrency in CONCURRENCY:
                        r = measure(url, body, concurrency, args.seconds)
                        print(f"| {model} | {config.label} | {concurrency} | "
                              f"{r.requests_per_second:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
                              f"{r.errors} |", flush=True)  # fmt: skip
                finally:
                    stop_server(server)


if __name__ == "__main__":
    main()
