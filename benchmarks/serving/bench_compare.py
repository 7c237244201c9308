"""Our inference server side by side with KServe, MLServer and Triton (PyTriton), one run.

Two models, fitted once here by our trainer (the same code as ``mlops train``): iris
LogisticRegression, and a 200-tree random forest (max depth 12) on a 30-feature
``make_classification`` set. The trainer writes model.onnx + model-card.json; the fitted
scikit-learn pipeline it exported is also saved as model.joblib for the stock sklearn runtimes,
so every system serves the same model. Systems, one at a time, each its own process tree on a
free 127.0.0.1 port:

- ``ours``: ``mlops serve`` (defaults: one worker per CPU, micro-batching, validation, metrics
  and drift counters on); for the forest also ``--max-batch-rows 1`` to show what batching buys;
- ``kserve-sklearn`` / ``kserve-onnx``: KServe's Python model server (competitors/kserve_server.py);
- ``mlserver-sklearn`` / ``mlserver-onnx``: MLServer with ``mlserver_sklearn.SKLearnModel`` /
  a minimal ONNX class (competitors/mlserver_onnx.py);
- ``pytriton-onnx``: Triton through PyTriton, dynamic batching on (competitors/pytriton_server.py);
- ``onnxruntime``: the in-process limit, ``session.run`` on one row in a tight loop.

Every HTTP system gets the same KServe V2 (Open Inference Protocol) JSON request, one FP32 row,
driven by ``wrk`` (2 threads, same machine) at concurrency 1, 16 and 64 for ``--seconds`` each.
RSS is summed over the server's process tree after each load step. Competitors run in their own
venvs, created once with pip and cached under ``~/.cache/mlops-operator/bench-venvs``; a system
whose install fails is reported with pip's error and skipped.

Run: ``.venv/bin/python benchmarks/serving/bench_compare.py [--seconds 10]``
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
from importlib import metadata
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

from mlops_operator.trainer.export import export_onnx
from mlops_operator.trainer.run import train
from mlops_operator.trainer.settings import TrainerSettings

VENV_ROOT = Path.home() / ".cache" / "mlops-operator" / "bench-venvs"
COMPETITORS = HERE / "competitors"
START_TIMEOUT = 240.0
STOP_TIMEOUT = 30.0


@dataclass(frozen=True)
class Venv:
    """A competitor's own environment: pip requirements on top of our sklearn and onnxruntime."""

    name: str
    requirements: tuple[str, ...]

    @property
    def path(self) -> Path:
        version = self.requirements[0].split("==")[1]
        return VENV_ROOT / f"{self.name}-{version}"


VENVS = {
    "kserve": Venv("kserve", ("kserve==0.21.0",)),
    # MLServer 1.7.1's inference workers call asyncio.get_event_loop() with no loop set, which
    # uvloop >= 0.22 refuses ("There is no current event loop"): every model fails to load.
    "mlserver": Venv("mlserver", ("mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop<0.22")),
    "pytriton": Venv("pytriton", ("nvidia-pytriton==0.7.0",)),
}


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


@dataclass(frozen=True)
class System:
    """One server under test."""

    label: str
    venv: str | None  # None: the project venv
    launch: Callable[[Model, int, Path], Launch]
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


def ensure_venv(venv: Venv) -> str | None:
    """Create (once) and return None, or return why the install failed (pip's last lines)."""
    marker = venv.path / ".complete"
    if marker.exists():
        return None
    ours = [
        f"scikit-learn=={metadata.version('scikit-learn')}",
        f"onnxruntime=={metadata.version('onnxruntime')}",
    ]
    base = getattr(sys, "_base_executable", sys.executable)
    steps = [
        [base, "-m", "venv", str(venv.path)],
        [
            str(venv.path / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            *venv.requirements,
            *ours,
        ],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=1800, check=False)
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            return " / ".join(lines[-6:])
    marker.touch()
    return None


def _ours(model: Model, port: int, scratch: Path, flags: tuple[str, ...] = ()) -> Launch:
    return Launch(
        [sys.executable, "-m", "mlops_operator.cli", "serve", "--model-dir", str(model.onnx_dir),
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "WARNING", *flags]
    )  # fmt: skip


def _kserve(kind: str) -> Callable[[Model, int, Path], Launch]:
    def launch(model: Model, port: int, scratch: Path) -> Launch:
        folder = model.sklearn_dir if kind == "sklearn" else model.onnx_dir
        return Launch(
            [str(VENVS["kserve"].path / "bin" / "python"), str(COMPETITORS / "kserve_server.py"),
             "--kind", kind, "--model-dir", str(folder), "--name", model.name,
             "--port", str(port), "--grpc-port", str(free_port())]
        )  # fmt: skip

    return launch


def _mlserver(kind: str) -> Callable[[Model, int, Path], Launch]:
    def launch(model: Model, port: int, scratch: Path) -> Launch:
        folder = scratch / "mlserver"
        (folder / model.name).mkdir(parents=True)
        settings = {
            "host": "127.0.0.1",
            "http_port": port,
            "grpc_port": free_port(),
            "metrics_port": free_port(),
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
        [str(VENVS["pytriton"].path / "bin" / "python"), str(COMPETITORS / "pytriton_server.py"),
         "--model-dir", str(model.onnx_dir), "--name", model.name, "--port", str(port),
         "--grpc-port", str(free_port()), "--metrics-port", str(free_port())],
        env={"LD_LIBRARY_PATH": libdir},
    )  # fmt: skip


def _ours_unbatched(model: Model, port: int, scratch: Path) -> Launch:
    return _ours(model, port, scratch, ("--max-batch-rows", "1"))


SYSTEMS = (
    System("ours", None, _ours),
    System("ours, no batching", None, _ours_unbatched, models=("forest",)),
    System("kserve-sklearn", "kserve", _kserve("sklearn")),
    System("kserve-onnx", "kserve", _kserve("onnx")),
    System("mlserver-sklearn", "mlserver", _mlserver("sklearn")),
    System("mlserver-onnx", "mlserver", _mlserver("onnx")),
    System("pytriton-onnx", "pytriton", _pytriton),
)


def tree_rss_mib(root: int) -> float:
    """Resident memory of ``root`` and all its descendants (shared pages counted per process)."""
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
    total_kib = 0
    for pid in tree:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total_kib += next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0
        )
    return total_kib / 1024


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
    concurrency: int
    result: Result
    rss_mib: float | None


def measure_system(system: System, model: Model, seconds: float, scratch: Path) -> list[Row]:
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
        for concurrency in CONCURRENCY:
            result = run_wrk(base + "/infer", body, concurrency, seconds)
            rows.append(
                Row(model.name, system.label, concurrency, result, tree_rss_mib(process.pid))
            )
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
    return Row(model.name, "onnxruntime in-process (1 thread)", 1, result, None)


def format_row(row: Row) -> str:
    r = row.result
    rss = f"{row.rss_mib:,.0f}" if row.rss_mib is not None else "—"
    return (
        f"| {row.model} | {row.system} | {row.concurrency} | {r.requests_per_second:,.0f} | "
        f"{r.p50_ms:.2f} | {r.p99_ms:.2f} | {rss} | {r.errors} |"
    )


TARGETS = (  # (model, competitor, minimum ratio of our req/s at concurrency 16)
    ("iris", "kserve-sklearn", 5.0),
    ("iris", "mlserver-sklearn", 5.0),
    ("iris", "kserve-onnx", 3.0),
    ("iris", "mlserver-onnx", 3.0),
    ("iris", "pytriton-onnx", 2.0),
    ("forest", "kserve-sklearn", 50.0),
    ("forest", "mlserver-sklearn", 50.0),
    ("forest", "kserve-onnx", 3.0),
    ("forest", "mlserver-onnx", 3.0),
)


def judge(rows: list[Row]) -> list[str]:
    """The issue's targets as lines: ratio, threshold, met or missed (or not measured)."""
    by_key = {(r.model, r.system, r.concurrency): r.result for r in rows}
    lines = []
    for model, competitor, minimum in TARGETS:
        ours, theirs = by_key.get((model, "ours", 16)), by_key.get((model, competitor, 16))
        if ours is None or theirs is None:
            lines.append(f"- {model} c16 ours / {competitor} >= {minimum:g}x: not measured")
            continue
        ratio = ours.requests_per_second / theirs.requests_per_second
        verdict = "met" if ratio >= minimum else "MISSED"
        lines.append(f"- {model} c16 ours / {competitor}: {ratio:.1f}x (>= {minimum:g}x) {verdict}")
    iris = by_key.get(("iris", "ours", 16))
    if iris is not None:
        verdict = "met" if iris.p99_ms < 3.0 else "MISSED"
        lines.append(f"- iris c16 ours p99: {iris.p99_ms:.2f} ms (< 3 ms) {verdict}")
    batched, unbatched = (
        by_key.get(("forest", "ours", 64)),
        by_key.get(("forest", "ours, no batching", 64)),
    )
    if batched is not None and unbatched is not None:
        gain = batched.requests_per_second / unbatched.requests_per_second
        verdict = "met" if gain > 1.0 else "MISSED"
        lines.append(f"- forest c64 micro-batching gain: {gain:.1f}x (> 1x) {verdict}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="load duration per cell")
    parser.add_argument("--systems", nargs="*", help="labels to run (default: all)")
    args = parser.parse_args()
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M')} {platform.node()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, wrk 2 threads, "
        f"{args.seconds:g} s per cell; load average before: {os.getloadavg()}",
        flush=True,
    )
    failed: dict[str, str] = {}
    for venv in VENVS.values():
        install_error = ensure_venv(venv)
        if install_error:
            failed[venv.name] = install_error
            print(f"# {venv.name} did not install: {install_error}", flush=True)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as root:
        models = fit_models(Path(root))
        for model in models.values():
            rows.append(onnxruntime_limit(model, min(args.seconds, 5.0)))
            for system in SYSTEMS:
                chosen = args.systems is None or system.label in args.systems
                if not chosen or model.name not in system.models:
                    continue
                if system.venv in failed:
                    continue
                with tempfile.TemporaryDirectory(dir=root) as scratch:
                    try:
                        rows += measure_system(system, model, args.seconds, Path(scratch))
                    except (RuntimeError, subprocess.SubprocessError) as error:
                        failed[f"{system.label} on {model.name}"] = str(error)
                        print(f"# {system.label} on {model.name} failed: {error}", flush=True)
    print(f"\nload average after: {os.getloadavg()}\n")
    print("| model | system | concurrency | req/s | p50 ms | p99 ms | RSS MiB | errors |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(format_row(row))
    print("\nTargets (req/s ratios at concurrency 16, same run):")
    print("\n".join(judge(rows)))
    for what, reason in failed.items():
        print(f"\nNot measured: {what}: {reason}")


if __name__ == "__main__":
    main()
