"""Long build steps that say they are alive: a heartbeat with the elapsed time and an estimate.

A cold build (Kubernetes from its Go module, the object store, a Debian root file system) runs
steps that print nothing for many minutes; in CI a silent step looks like a hang. `run_step`
runs one command and prints, every `HEARTBEAT_SECONDS`, how long it has been running and how
long the same step took last time on this machine (timings kept beside the cache, in
``timings.json``), so the wait has an end in sight. A step's own output is kept and shown only
when it fails.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from mlops_operator.localcluster.files import write_atomically

__all__ = ["HEARTBEAT_SECONDS", "StepFailed", "heartbeat", "log", "run_step", "timings_file"]

HEARTBEAT_SECONDS = 20.0
"""How often a running step reports; below the 30 s a watcher should ever wait for a line."""


class StepFailed(RuntimeError):
    """A step's command exited non-zero; the message carries the end of its output."""


def log(message: str) -> None:
    """One progress line on stderr, flushed at once."""
    print(f"[build] {message}", file=sys.stderr, flush=True)


def timings_file() -> Path:
    """Where the duration of each step's last successful run is kept."""
    from mlops_operator.localcluster.binaries import cache_root

    return cache_root() / "timings.json"


def _timings() -> dict[str, float]:
    try:
        loaded = json.loads(timings_file().read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}


def _remember(step: str, seconds: float) -> None:
    timings = _timings() | {step: round(seconds, 1)}
    path = timings_file()
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, json.dumps(timings, indent=1, sort_keys=True) + "\n", 0o644)


def _minutes(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60}m{whole % 60:02d}s" if whole >= 60 else f"{whole}s"


def _beat(step: str, started: float, previous: float | None) -> str:
    elapsed = time.monotonic() - started
    if previous is None:
        return f"{step}: still running, {_minutes(elapsed)} so far (no earlier run to compare)"
    left = previous - elapsed
    estimate = f"about {_minutes(left)} left" if left > 0 else "longer than last time"
    return (
        f"{step}: still running, {_minutes(elapsed)} so far; last run took"
        f" {_minutes(previous)}, {estimate}"
    )


@contextlib.contextmanager
def heartbeat(step: str, interval: float = HEARTBEAT_SECONDS) -> Iterator[None]:
    """Report `step` every `interval` seconds while the block runs; record its time if it succeeds."""
    previous = _timings().get(step)
    started = time.monotonic()
    log(f"{step} ..." + (f" (last run: {_minutes(previous)})" if previous else ""))
    done = threading.Event()

    def report() -> None:
        while not done.wait(interval):
            log(_beat(step, started, previous))

    reporter = threading.Thread(target=report, name=f"heartbeat {step}", daemon=True)
    reporter.start()
    try:
        yield
    finally:
        done.set()
        reporter.join()
    took = time.monotonic() - started
    _remember(step, took)
    log(f"{step}: done in {_minutes(took)}")


def run_step(
    step: str,
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    interval: float = HEARTBEAT_SECONDS,
) -> str:
    """Run `args` as the step `step` with a heartbeat; its stdout (StepFailed with its output)."""
    with heartbeat(step, interval):
        proc = subprocess.run(
            list(args), cwd=cwd, env=env, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise StepFailed(
                f"{step}: `{' '.join(args)}` failed with exit code {proc.returncode}:\n"
                f"{(proc.stdout + proc.stderr)[-4000:]}"
            )
    return proc.stdout
