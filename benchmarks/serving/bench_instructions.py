"""Instructions per request, from valgrind's callgrind: a figure load on the machine cannot move.

Wall-clock figures on a shared 2-core machine swing with whatever else runs; an instruction
count does not. Each server runs under ``valgrind --tool=callgrind`` twice, answering
``--few`` then ``--many`` sequential keep-alive requests (one client, one connection), and
the difference of the two totals divided by the difference of the counts is what one
request costs: start-up, imports and model loading cancel out. The floor
(``floor_server.py``) is measured the same way, so the printed ratio is the per-request
overhead of validation, metrics, drift counters, the label record and batching over the
bare minimum. ``--profile DIR`` keeps the callgrind files (``callgrind_annotate`` reads
them).

Ours is measured three ways: V2 JSON, ``/predict`` rows, and V2 JSON with the 5 s deadline
a ModelDeployment's servers run with (``timeoutMs``'s default). Runs of one server differ by a
few hundred instructions a request with ``--few 200 --many 1200``, by a few thousand with
100/600 (garbage collections and loop turns that land in one run and not the other).

Threads are counted apart (``--separate-threads=yes``): the ratio is the event loop's
thread, the request path. Other threads do work by the clock, not by the request:
numpy's idle BLAS pool, and in ours the label log's flush, which writes a Parquet file
every two seconds, so under callgrind (requests ~50x slower) each file holds a few dozen
rows and its fixed cost reads as tens of thousands of instructions per request. What the
flush costs per row at a real rate is ``benchmarks/labels/bench_record.py``'s figure.

Our server counts calls together (drift bins, rows, the prediction log) once 256 rows are
kept or ``observe_delay_ms`` after the first (50 ms). At a real rate the rows come first
(256 one-row requests take ~40 ms at c=1); under callgrind a request takes milliseconds
and the timer would fire every few requests, so the delay is set out of reach here
(``MLOPS_OBSERVE_DELAY_MS``) to count what one request costs at full speed. Likewise where
onnxruntime runs: the server times a one-row call at start and hands models over 100 µs to a
thread; under callgrind every model looks that slow, so the decision is taken here, at full
speed, the way the server takes it, and passed on (``MLOPS_OFFLOAD_INFERENCE``): iris runs on
the event loop, as the floor's model does.

Needs valgrind (``apt-get install valgrind``; installed here when missing and run as root).

Run: ``.venv/bin/python benchmarks/serving/bench_instructions.py [--few 200 --many 1200]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_self import free_port
from tools import ensure_debian_package

from mlops_operator.serving.batching import OFFLOAD_ABOVE_SECONDS, one_row_seconds
from mlops_operator.serving.loading import load_model
from mlops_operator.trainer.run import train
from mlops_operator.trainer.settings import TrainerSettings

SERVER_START = 600.0


def keepalive_requests(
    port: int, path: str, body: bytes, headers: dict[str, str], count: int
) -> None:
    """``count`` sequential requests on one connection; every answer must be a 200."""
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\n{head}Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        reader = sock.makefile("rb")
        for _ in range(count):
            sock.sendall(request)
            status = reader.readline()
            if b" 200 " not in status:
                raise RuntimeError(f"{path} answered {status!r}")
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            reader.read(length)


def instructions(
    command: list[str],
    port: int,
    send: int,
    out: Path,
    load: dict[str, object],
    env: dict[str, str] | None = None,
) -> tuple[int, int]:
    """Instructions of the server under callgrind after ``send`` requests: its event loop's
    thread, and all its threads."""
    for stale in out.parent.glob(f"{out.name}-*"):  # one file per thread, from an earlier run
        stale.unlink()
    process = subprocess.Popen(
        [
            "valgrind",
            "--tool=callgrind",
            "--separate-threads=yes",
            f"--callgrind-out-file={out}",
            *command,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # Not `env VAR=... python`: callgrind would count `env` and stop at its exec.
        env=os.environ | (env or {}),
    )
    deadline = time.monotonic() + SERVER_START
    while True:
        try:
            keepalive_requests(port, **load, count=1)  # type: ignore[arg-type]
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"server did not start: {process.stderr.read() if process.stderr else ''}"
                ) from None
            time.sleep(0.5)
    keepalive_requests(port, **load, count=send)  # type: ignore[arg-type]
    os.killpg(process.pid, signal.SIGTERM)
    _, stderr = process.communicate(timeout=SERVER_START)
    threads: dict[int, int] = {}
    for part in out.parent.glob(f"{out.name}-*"):
        text = part.read_text(errors="replace")
        thread = re.search(r"^thread: (\d+)", text, re.MULTILINE)
        total = re.search(r"^totals: (\d+)", text, re.MULTILINE)
        if thread and total:
            threads[int(thread[1])] = threads.get(int(thread[1]), 0) + int(total[1])
    if 1 not in threads:
        raise RuntimeError(f"no callgrind totals: {stderr[-2000:]}")
    return threads[1], sum(threads.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--few", type=int, default=200)
    parser.add_argument("--many", type=int, default=1200)
    parser.add_argument("--profile", type=Path, help="keep the callgrind files here")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="also measure the server of another checkout (its operator/ on PYTHONPATH), e.g. "
        "`git archive main operator | tar -x -C /tmp/main` to show what a change saves",
    )
    parser.add_argument(
        "--only-v2", action="store_true", help="skip the /predict and deadline rows"
    )
    args = parser.parse_args()
    ensure_debian_package("valgrind", "valgrind")
    with tempfile.TemporaryDirectory() as root:
        model_dir = Path(root) / "iris"
        train(TrainerSettings(dataset_uri="sklearn://iris", target="target",
                              estimator="LogisticRegression", model_name="iris", output_dir=model_dir))  # fmt: skip
        row = [5.1, 3.5, 1.4, 0.2]
        v2 = json.dumps(
            {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": row}]}
        ).encode()
        json_headers = {"Content-Type": "application/json"}
        # Every prediction recorded for labels, as in production (issue 18's targets hold with it).
        labels = str(Path(root) / "labels")
        python = sys.executable
        servers = {
            "floor (aiohttp + onnxruntime)": (
                lambda port: [python, str(HERE / "floor_server.py"), "--model-dir", str(model_dir),
                              "--name", "iris", "--port", str(port)],
                {"path": "/v2/models/iris/infer", "body": v2, "headers": json_headers},
            ),
            "mlops serve, V2 JSON": (
                lambda port: [python, "-m", "mlops_operator.cli", "serve", "--model-dir", str(model_dir),
                              "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                              "--labels-uri", labels, "--log-level", "WARNING"],
                {"path": "/v2/models/iris/infer", "body": v2, "headers": json_headers},
            ),
            "mlops serve, /predict": (
                lambda port: [python, "-m", "mlops_operator.cli", "serve", "--model-dir", str(model_dir),
                              "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                              "--labels-uri", labels, "--log-level", "WARNING"],
                {"path": "/predict", "body": json.dumps({"rows": [row]}).encode(), "headers": json_headers},
            ),
            # A ModelDeployment's servers run with its timeoutMs, 5 s unless set.
            "mlops serve, V2 JSON, 5 s deadline": (
                lambda port: [python, "-m", "mlops_operator.cli", "serve", "--model-dir", str(model_dir),
                              "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                              "--labels-uri", labels, "--log-level", "WARNING", "--timeout-ms", "5000"],
                {"path": "/v2/models/iris/infer", "body": v2, "headers": json_headers},
            ),
        }  # fmt: skip
        if args.only_v2:
            del servers["mlops serve, /predict"]
            del servers["mlops serve, V2 JSON, 5 s deadline"]
        offload = one_row_seconds(load_model(str(model_dir), threads=1)) > OFFLOAD_ABOVE_SECONDS
        at_full_speed = {
            "MLOPS_OBSERVE_DELAY_MS": "3600000",
            "MLOPS_OFFLOAD_INFERENCE": str(offload).lower(),
        }
        environments = {label: at_full_speed for label in servers if label.startswith("mlops")}
        if args.baseline is not None:
            label = "mlops serve, V2 JSON, baseline"
            baseline = at_full_speed | {
                "PYTHONPATH": str(args.baseline.resolve() / "operator"),
                "PYTHONDONTWRITEBYTECODE": "1",
            }
            # The same model trained by the baseline's own trainer: an older server may refuse
            # a card with fields it does not know yet (it forbids unknown fields).
            baseline_model = Path(root) / "iris-baseline"
            subprocess.run(
                [python, "-m", "mlops_operator.cli", "train", "--dataset", "sklearn://iris",
                 "--target", "target", "--estimator", "LogisticRegression",
                 "--model-name", "iris", "--output", str(baseline_model)],
                env=os.environ | baseline, check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            servers[label] = (
                lambda port: [python, "-m", "mlops_operator.cli", "serve", "--model-dir",
                              str(baseline_model), "--host", "127.0.0.1", "--port", str(port),
                              "--workers", "1", "--labels-uri", labels, "--log-level", "WARNING"],
                servers["mlops serve, V2 JSON"][1],
            )  # fmt: skip
            environments[label] = baseline
        print(f"# {time.strftime('%Y-%m-%d %H:%M')} instructions per request (callgrind), "
              f"{args.many - args.few} requests' difference; onnxruntime "
              f"{'in a thread' if offload else 'on the event loop'}; load average {os.getloadavg()}")  # fmt: skip
        print("| server | instructions per request, event loop | ratio to the floor "
              "| all threads (clock-driven work included) |")  # fmt: skip
        print("|---|---:|---:|---:|")
        floor = None
        for label, (command, load) in servers.items():
            counts: list[tuple[int, int]] = []
            for send in (args.few, args.many):
                port = free_port()
                folder = args.profile or Path(root)
                folder.mkdir(parents=True, exist_ok=True)
                slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
                out = folder / f"callgrind.{slug}.{send}"
                counts.append(
                    instructions(command(port), port, send, out, load, environments.get(label))
                )
            sent = args.many - args.few
            per_request = (counts[1][0] - counts[0][0]) / sent
            every_thread = (counts[1][1] - counts[0][1]) / sent
            floor = floor or per_request
            print(f"| {label} | {per_request:,.0f} | {per_request / floor:.2f} "
                  f"| {every_thread:,.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
