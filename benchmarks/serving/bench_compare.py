"""Our inference server side by side with the floor, KServe, MLServer and Triton, one run.

Two models, fitted once here by our trainer (the same code as ``mlops train``): iris
LogisticRegression, and a 200-tree random forest (max depth 12) on a 30-feature
``make_classification`` set. The trainer writes model.onnx + model-card.json; the fitted
scikit-learn pipeline it exported is also saved as model.joblib for the stock sklearn runtimes,
so every system serves the same model. Systems, one at a time, each its own process tree on a
free 127.0.0.1 port, at equal process counts (one, and two: one per CPU here):

- ``floor``: the least a Python server does (floor_server.py: aiohttp + onnxruntime, one
  process, no validation, no metrics); our targets are ratios to it in the same run;
- ``ours``: ``mlops serve`` with validation, metrics and drift counters on, 1 and 2 workers;
  for the forest also ``--max-batch-rows 1`` to show what batching buys;
- ``kserve-sklearn`` / ``kserve-onnx``: KServe's Python model server, 1 and 2 uvicorn workers
  (the model loaded in each worker; competitors/kserve_server.py);
- ``mlserver-sklearn`` / ``mlserver-onnx``: MLServer with ``mlserver_sklearn.SKLearnModel`` /
  a minimal ONNX class (competitors/mlserver_onnx.py), inference in the server process and
  with 2 parallel inference workers;
- ``pytriton-onnx``: Triton through PyTriton, dynamic batching on (competitors/pytriton_server.py);
- ``onnxruntime``: the in-process limit, ``session.run`` on one row in a tight loop.

Every HTTP system gets the same KServe V2 (Open Inference Protocol) JSON request, one FP32 row,
driven by ``wrk`` (2 threads, same machine; installed from Debian's packages when missing) at
concurrency 1, 16 and 64 for ``--seconds`` each; our gRPC endpoint is driven by ``ghz`` (built
once from its Go module) with the same row. RSS is summed over the server's process tree after
each load step, and CPU time per request over the tree during it. ``--rounds N`` measures the
floor and ``ours, 1 worker`` N times in alternation and judges the targets in each round.
Competitors run in their own venvs (venvs.py); a system whose install or start fails is
reported with its error and skipped.

Run: ``.venv/bin/python benchmarks/serving/bench_compare.py [--seconds 6] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import joblib
import numpy as np
import onnxruntime
import pandas as pd
from pydantic import JsonValue
from sklearn.datasets import make_classification

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_self import CONCURRENCY, Result, free_port, run_wrk
from tools import MissingTool, ensure_debian_package, ensure_go_tool
from venvs import VENVS, ensure_venv

from mlops_operator.trainer.export import export_onnx
from mlops_operator.trainer.run import train
from mlops_operator.trainer.settings import TrainerSettings

COMPETITORS = HERE / "competitors"
PROTO = (
    HERE.parents[1] / "operator" / "mlops_operator" / "serving" / "oip" / "grpc_predict_v2.proto"
)
GHZ_MODULE = "github.com/bojand/ghz/cmd/ghz@v0.120.0"
START_TIMEOUT = 240.0
STOP_TIMEOUT = 30.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Model:
    """A model as every system gets it: the ONNX folder, the joblib folder, one request row."""

    name: str
    onnx_dir: Path
    sklearn_dir: Path
    row: list[float]

    def v2_body(self) -> str:
        """The one request every HTTP system answers: one FP32 row as a V2 tensor."""
        tensor = {"name": "input", "shape": [1, len(self.row)], "datatype": "FP32"}
        return json.dumps({"inputs": [tensor | {"data": self.row}]})


@dataclass
class Launch:
    """How to start one system on one model: the command, its environment and working dir."""

    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    grpc_port: int | None = None


@dataclass(frozen=True)
class System:
    """One server under test."""

    label: str
    venv: str | None  # None: the project venv
    launch: Callable[[Model, int, Path], Launch]
    processes: str  # how many processes serve: the fairness column of the table
    models: tuple[str, ...] = ("iris", "forest")


def train_keeping_pipeline(settings: TrainerSettings) -> Any:
    """Run the trainer as ``mlops train`` does; return the fitted pipeline it exported to ONNX."""
    exported: list[Any] = []

    def capture(pipeline: Any, *args: Any, **kwargs: Any) -> Any:
        exported.append(pipeline)
        return export_onnx(pipeline, *args, **kwargs)

    with mock.patch("mlops_operator.trainer.run.export_onnx", capture):
        train(settings)
    return exported[0]


def fit_models(root: Path) -> dict[str, Model]:
    """Train both models with our trainer; keep the exact pipeline it exported as joblib."""
    x, y = make_classification(n_samples=4000, n_features=30, n_informative=12, random_state=0)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(30)]).assign(target=y)
    frame.to_csv(root / "forest.csv", index=False)
    rows = {"iris": [5.1, 3.5, 1.4, 0.2], "forest": x[0].tolist()}  # first row of each set
    specs: dict[str, tuple[str, str, dict[str, JsonValue]]] = {
        "iris": ("sklearn://iris", "LogisticRegression", {}),
        "forest": (
            str(root / "forest.csv"),
            "RandomForestClassifier",
            {"n_estimators": 200, "max_depth": 12},
        ),
    }
    models = {}
    for name, (dataset, estimator, params) in specs.items():
        settings = TrainerSettings(
            dataset_uri=dataset,
            target="target",
            estimator=estimator,
            params=params,
            model_name=name,
            output_dir=root / name / "onnx",
        )
        pipeline = train_keeping_pipeline(settings)
        (root / name / "sklearn").mkdir()
        joblib.dump(pipeline, root / name / "sklearn" / "model.joblib")
        models[name] = Model(name, root / name / "onnx", root / name / "sklearn", rows[name])
    return models


def _floor(model: Model, port: int, scratch: Path) -> Launch:
    return Launch(
        [sys.executable, str(HERE / "floor_server.py"), "--model-dir", str(model.onnx_dir),
         "--name", model.name, "--port", str(port)]
    )  # fmt: skip


def _ours(*flags: str, grpc: bool = False) -> Callable[[Model, int, Path], Launch]:
    """``mlops serve``; with ``grpc`` its gRPC endpoint is on too and is what gets loaded (a
    gRPC server costs its worker CPU even when idle, so HTTP rows are measured without it).
    Every prediction is recorded for labels, as in a deployment with ``spec.feedback``."""

    def launch(model: Model, port: int, scratch: Path) -> Launch:
        grpc_port = free_port() if grpc else None
        extra = ["--grpc-port", str(grpc_port)] if grpc_port else []
        return Launch(
            [sys.executable, "-m", "mlops_operator.cli", "serve", "--model-dir",
             str(model.onnx_dir), "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "WARNING", "--labels-uri", str(scratch / "labels"), *extra, *flags],
            grpc_port=grpc_port,
        )  # fmt: skip

    return launch


def _kserve(kind: str, workers: int) -> Callable[[Model, int, Path], Launch]:
    def launch(model: Model, port: int, scratch: Path) -> Launch:
        folder = model.sklearn_dir if kind == "sklearn" else model.onnx_dir
        return Launch(
            [str(VENVS["kserve"].python), str(COMPETITORS / "kserve_server.py"),
             "--kind", kind, "--model-dir", str(folder), "--name", model.name,
             "--port", str(port), "--grpc-port", str(free_port()), "--workers", str(workers)]
        )  # fmt: skip

    return launch


def _mlserver(kind: str, parallel_workers: int) -> Callable[[Model, int, Path], Launch]:
    def launch(model: Model, port: int, scratch: Path) -> Launch:
        folder = scratch / "mlserver"
        (folder / model.name).mkdir(parents=True)
        settings = {
            "host": "127.0.0.1",
            "http_port": port,
            "grpc_port": free_port(),
            "metrics_port": free_port(),
            # 0: inference in the server process; N: a pool of N inference processes.
            "parallel_workers": parallel_workers,
        }
        (folder / "settings.json").write_text(json.dumps(settings))
        implementation, uri = {
            "sklearn": ("mlserver_sklearn.SKLearnModel", model.sklearn_dir / "model.joblib"),
            "onnx": ("mlserver_onnx.OnnxModel", model.onnx_dir / "model.onnx"),
        }[kind]
        model_settings = {
            "name": model.name,
            "implementation": implementation,
            "parameters": {"uri": str(uri)},
        }
        (folder / model.name / "model-settings.json").write_text(json.dumps(model_settings))
        return Launch(
            [str(VENVS["mlserver"].path / "bin" / "mlserver"), "start", str(folder)],
            env={"PYTHONPATH": str(COMPETITORS)},
            cwd=folder,
        )

    return launch


def _pytriton(model: Model, port: int, scratch: Path) -> Launch:
    # Triton's Python stub links libpython3.11.so.1.0; without this it finds the distribution's
    # (3.11.2) under our interpreter's 3.11.7 stdlib and fails on RLock._recursion_count.
    libdir = sysconfig.get_config_var("LIBDIR")
    return Launch(
        [str(VENVS["pytriton"].python), str(COMPETITORS / "pytriton_server.py"),
         "--model-dir", str(model.onnx_dir), "--name", model.name, "--port", str(port),
         "--grpc-port", str(free_port()), "--metrics-port", str(free_port())],
        env={"LD_LIBRARY_PATH": libdir},
    )  # fmt: skip


FLOOR = System("floor", None, _floor, "1")
OURS_ONE = System("ours, 1 worker", None, _ours("--workers", "1"), "1")
SYSTEMS = (
    FLOOR,
    OURS_ONE,
    System("ours, 2 workers", None, _ours("--workers", "2"), "2"),
    System("ours, 1 worker, gRPC", None, _ours("--workers", "1", grpc=True), "1"),
    System("ours, 2 workers, gRPC", None, _ours("--workers", "2", grpc=True), "2"),
    System("ours, 2 workers, no batching", None, _ours("--workers", "2", "--max-batch-rows", "1"),
           "2", models=("forest",)),
    System("kserve-onnx", "kserve", _kserve("onnx", 1), "1"),
    System("kserve-onnx, 2 workers", "kserve", _kserve("onnx", 2), "2 (+1 parent)"),
    System("kserve-sklearn", "kserve", _kserve("sklearn", 1), "1"),
    System("kserve-sklearn, 2 workers", "kserve", _kserve("sklearn", 2), "2 (+1 parent)"),
    System("mlserver-onnx", "mlserver", _mlserver("onnx", 0), "1"),
    System("mlserver-onnx, 2 workers", "mlserver", _mlserver("onnx", 2), "1 + 2 inference"),
    System("mlserver-sklearn", "mlserver", _mlserver("sklearn", 0), "1"),
    System("mlserver-sklearn, 2 workers", "mlserver", _mlserver("sklearn", 2), "1 + 2 inference"),
    System("pytriton-onnx", "pytriton", _pytriton, "Triton + 1 Python"),
)  # fmt: skip


def tree_pids(root: int) -> set[int]:
    """``root`` and all its descendants."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [child for child, parent in parents.items() if parent == pid]
        tree.update(children)
        frontier.extend(children)
    return tree


def tree_rss_mib(root: int) -> float:
    """Resident memory of ``root`` and all its descendants (shared pages counted per process)."""
    total_kib = 0
    for pid in tree_pids(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total_kib += next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0
        )
    return total_kib / 1024


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU time of ``root`` and its descendants so far."""
    ticks = 0
    for pid in tree_pids(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / CLOCK_TICKS


def _post(url: str, body: str) -> tuple[int, str]:
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@contextmanager
def running(launch: Launch, ready_url: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server in its own session, wait until ``ready_url`` answers 200, stop it after."""
    with log.open("wb") as sink:
        process = subprocess.Popen(
            launch.command,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=os.environ | launch.env,
            cwd=launch.cwd,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"exited with {process.returncode}: {_tail(log)}")
            try:
                with urllib.request.urlopen(ready_url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready within {START_TIMEOUT:.0f} s: {_tail(log)}")
            time.sleep(0.2)
        yield process
    finally:
        _stop_group(process)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(STOP_TIMEOUT)
    except ProcessLookupError:
        return
    with suppress(ProcessLookupError):  # children that outlived their parent (Triton, MLServer)
        os.killpg(process.pid, signal.SIGKILL)


def _tail(log: Path) -> str:
    return " / ".join(log.read_text(errors="replace").strip().splitlines()[-8:])


@dataclass(frozen=True)
class Row:
    model: str
    system: str
    processes: str
    concurrency: int
    result: Result
    rss_mib: float | None
    cpu_us: float | None = None  # CPU time of the server's tree per request
    protocol: str = "HTTP"


def run_ghz(ghz: str, port: int, model: Model, concurrency: int, seconds: float) -> Result:
    """gRPC load with ghz: ModelInfer with the same one row, ``concurrency`` connections' worth."""
    request = {
        "model_name": model.name,
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, len(model.row)],
                    "contents": {"fp32_contents": model.row}}],
    }  # fmt: skip
    done = subprocess.run(
        [ghz, "--insecure", "--proto", str(PROTO), "--import-paths", str(PROTO.parent),
         "--call", "inference.GRPCInferenceService.ModelInfer", "-d", json.dumps(request),
         "-c", str(concurrency), "--connections", str(min(concurrency, 16)),
         "-z", f"{max(1, round(seconds))}s", "-O", "json", f"127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=seconds + 120, check=False,
    )  # fmt: skip
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"ghz failed: {done.stderr[-500:]}")
    report = json.loads(done.stdout)
    latency = {p["percentage"]: p["latency"] / 1e6 for p in report.get("latencyDistribution") or []}
    errors = sum(c for code, c in report.get("statusCodeDistribution", {}).items() if code != "OK")
    return Result(
        report["rps"], latency.get(50, float("nan")), latency.get(99, float("nan")), errors
    )


@dataclass
class Tools:
    wrk: bool
    ghz: str | None


def measure_system(
    system: System, model: Model, seconds: float, scratch: Path, tools: Tools
) -> list[Row]:
    """Start ``system`` on ``model``, check one answer, then load it at each concurrency."""
    port = free_port()
    launch = system.launch(model, port, scratch)
    base = f"http://127.0.0.1:{port}/v2/models/{model.name}"
    body = model.v2_body()
    rows = []
    with running(launch, base + "/ready", scratch / "server.log") as process:
        status, answer = _post(base + "/infer", body)
        if status != 200:
            raise RuntimeError(f"the first request got {status}: {answer[:300]}")
        print(f"  {system.label} on {model.name} answers: {answer[:160]}", flush=True)
        run_wrk(base + "/infer", body, 16, 1.0)  # warm-up
        for concurrency in CONCURRENCY if launch.grpc_port is None else ():
            cpu = tree_cpu_seconds(process.pid)
            result = run_wrk(base + "/infer", body, concurrency, seconds)
            served = result.requests_per_second * max(1, round(seconds))
            cpu_us = (tree_cpu_seconds(process.pid) - cpu) / served * 1e6
            rows.append(
                Row(model.name, system.label, system.processes, concurrency, result,
                    tree_rss_mib(process.pid), cpu_us)
            )  # fmt: skip
            print(f"  {format_row(rows[-1])}", flush=True)
        if launch.grpc_port is not None and tools.ghz is not None:
            run_ghz(tools.ghz, launch.grpc_port, model, 16, 1.0)  # warm-up
            for concurrency in CONCURRENCY:
                cpu = tree_cpu_seconds(process.pid)
                result = run_ghz(tools.ghz, launch.grpc_port, model, concurrency, seconds)
                served = result.requests_per_second * max(1, round(seconds))
                cpu_us = (tree_cpu_seconds(process.pid) - cpu) / served * 1e6
                rows.append(
                    Row(model.name, system.label, system.processes, concurrency, result,
                        tree_rss_mib(process.pid), cpu_us, protocol="gRPC")
                )  # fmt: skip
                print(f"  {format_row(rows[-1])}", flush=True)
    return rows


def onnxruntime_limit(model: Model, seconds: float) -> Row:
    """The ceiling for one-row requests: ``session.run`` in a loop, no server at all."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(model.onnx_dir / "model.onnx"), options)
    feed = {"input": np.asarray([model.row], dtype=np.float32)}
    durations: list[float] = []
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline and len(durations) < 5_000_000:
        begin = time.perf_counter()
        session.run(None, feed)
        durations.append(time.perf_counter() - begin)
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(durations, n=100)
    result = Result(len(durations) / elapsed, cuts[49] * 1e3, cuts[98] * 1e3, 0)
    return Row(model.name, "onnxruntime in-process (1 thread)", "—", 1, result, None, protocol="—")


def format_row(row: Row) -> str:
    r = row.result
    rss = f"{row.rss_mib:,.0f}" if row.rss_mib is not None else "—"
    cpu = f"{row.cpu_us:,.0f}" if row.cpu_us is not None else "—"
    return (
        f"| {row.model} | {row.system} | {row.processes} | {row.protocol} | {row.concurrency} | "
        f"{r.requests_per_second:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {cpu} | {rss} | "
        f"{r.errors} |"
    )


TARGETS = (  # (model, competitor, minimum ratio of our req/s at concurrency 16), same processes
    ("iris", "ours, 2 workers", "kserve-sklearn, 2 workers", 5.0),
    ("iris", "ours, 2 workers", "mlserver-sklearn, 2 workers", 5.0),
    ("iris", "ours, 2 workers", "kserve-onnx, 2 workers", 3.0),
    ("iris", "ours, 2 workers", "mlserver-onnx, 2 workers", 3.0),
    ("iris", "ours, 1 worker", "kserve-onnx", 3.0),
    ("iris", "ours, 1 worker", "mlserver-onnx", 3.0),
    ("iris", "ours, 2 workers", "pytriton-onnx", 2.0),
    ("forest", "ours, 2 workers", "kserve-sklearn, 2 workers", 50.0),
    ("forest", "ours, 2 workers", "mlserver-sklearn, 2 workers", 50.0),
    ("forest", "ours, 2 workers", "kserve-onnx, 2 workers", 3.0),
    ("forest", "ours, 2 workers", "mlserver-onnx, 2 workers", 3.0),
)


def judge_floor(rows: list[Row], label: str = "") -> list[str]:
    """Issue 18's targets: ours with one worker against the floor measured in the same run."""
    by_key = {(r.model, r.system, r.concurrency, r.protocol): r.result for r in rows}
    lines = []
    for model in ("iris", "forest"):
        floor1, ours1, floor16, ours16 = (
            by_key.get((model, system, concurrency, "HTTP"))
            for concurrency in (1, 16)
            for system in ("floor", OURS_ONE.label)
        )
        if floor1 is None or ours1 is None or floor16 is None or ours16 is None:
            continue
        checks = (
            ("c1 p50 latency", ours1.p50_ms / floor1.p50_ms, "<=", 1.2),
            ("c16 req/s", ours16.requests_per_second / floor16.requests_per_second, ">=", 0.85),
            ("c16 p99", ours16.p99_ms / floor16.p99_ms, "<=", 2.0),
        )
        for what, ratio, sense, bound in checks:
            met = ratio <= bound if sense == "<=" else ratio >= bound
            lines.append(
                f"- {label}{model} {what}, ours 1 worker / floor: {ratio:.2f} ({sense} {bound:g})"
                f" {'met' if met else 'MISSED'}"
            )
    return lines


def judge(rows: list[Row]) -> list[str]:
    """Throughput ratios at equal process counts: met or missed (or not measured)."""
    by_key = {(r.model, r.system, r.concurrency, r.protocol): r.result for r in rows}
    lines = []
    for model, ours_label, competitor, minimum in TARGETS:
        ours, theirs = (
            by_key.get((model, ours_label, 16, "HTTP")),
            by_key.get((model, competitor, 16, "HTTP")),
        )
        if ours is None or theirs is None:
            lines.append(f"- {model} c16 {ours_label} / {competitor} >= {minimum:g}x: not measured")
            continue
        ratio = ours.requests_per_second / theirs.requests_per_second
        verdict = "met" if ratio >= minimum else "MISSED"
        lines.append(
            f"- {model} c16 {ours_label} / {competitor}: {ratio:.1f}x (>= {minimum:g}x) {verdict}"
        )
    batched = by_key.get(("forest", "ours, 2 workers", 64, "HTTP"))
    unbatched = by_key.get(("forest", "ours, 2 workers, no batching", 64, "HTTP"))
    if batched is not None and unbatched is not None:
        gain = batched.requests_per_second / unbatched.requests_per_second
        lines.append(
            f"- forest c64 micro-batching gain: {gain:.1f}x (> 1x) {'met' if gain > 1 else 'MISSED'}"
        )
    return lines


def setup_tools(want_grpc: bool) -> Tools:
    """wrk (Debian) and ghz (Go module), installed or built when missing; say what is not."""
    try:
        ensure_debian_package("wrk", "wrk")
    except MissingTool as error:
        raise SystemExit(f"bench_compare needs wrk: {error}") from error
    ghz = None
    if want_grpc:
        try:
            ghz = ensure_go_tool("ghz", GHZ_MODULE)
        except MissingTool as error:
            print(f"# no gRPC figures: {error}", flush=True)
    return Tools(wrk=True, ghz=ghz)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="load duration per cell")
    parser.add_argument("--systems", nargs="*", help="labels to run (default: all)")
    parser.add_argument("--models", nargs="*", default=["iris", "forest"])
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure the floor and ours with 1 worker this many times in turn")  # fmt: skip
    parser.add_argument("--no-grpc", action="store_true", help="skip the gRPC load (ghz)")
    args = parser.parse_args()
    tools = setup_tools(not args.no_grpc)
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M')} {platform.node()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, wrk 2 threads, "
        f"{args.seconds:g} s per cell; load average before: {os.getloadavg()}",
        flush=True,
    )
    chosen = [s for s in SYSTEMS if args.systems is None or s.label in args.systems]
    failed: dict[str, str] = {}
    for name in sorted({s.venv for s in chosen if s.venv}):
        install_error = ensure_venv(VENVS[name])
        if install_error:
            failed[name] = install_error
            print(f"# {name} did not install: {install_error}", flush=True)
    rows: list[Row] = []
    rounds: list[list[str]] = []
    with tempfile.TemporaryDirectory() as root:
        models = {k: v for k, v in fit_models(Path(root)).items() if k in args.models}
        for model in models.values():
            rows.append(onnxruntime_limit(model, min(args.seconds, 5.0)))
            for system in chosen:
                if model.name not in system.models or system.venv in failed:
                    continue
                with tempfile.TemporaryDirectory(dir=root) as scratch:
                    try:
                        rows += measure_system(system, model, args.seconds, Path(scratch), tools)
                    except (RuntimeError, subprocess.SubprocessError) as error:
                        failed[f"{system.label} on {model.name}"] = str(error)
                        print(f"# {system.label} on {model.name} failed: {error}", flush=True)
        # More rounds of the floor against ours, in turn: the tail target must hold in each.
        for number in range(2, args.rounds + 1):
            extra: list[Row] = []
            for model in models.values():
                for system in (FLOOR, OURS_ONE):
                    with tempfile.TemporaryDirectory(dir=root) as scratch:
                        no_grpc = Tools(wrk=True, ghz=None)
                        extra += measure_system(system, model, args.seconds, Path(scratch), no_grpc)
            rounds.append(judge_floor(extra, f"round {number}: "))
    print(f"\nload average after: {os.getloadavg()}\n")
    print(
        "| model | system | processes | protocol | concurrency | req/s | p50 ms | p99 ms | CPU µs/req | RSS MiB | errors |"
    )
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(format_row(row))
    print("\nTargets against the floor (issue 18), same run:")
    print("\n".join(judge_floor(rows, "round 1: " if args.rounds > 1 else "")))
    for lines in rounds:
        print("\n".join(lines))
    print("\nTargets against the competitors (req/s ratios at concurrency 16, same process count):")
    print("\n".join(judge(rows)))
    for what, reason in failed.items():
        print(f"\nNot measured: {what}: {reason}")


if __name__ == "__main__":
    main()
