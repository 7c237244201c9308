"""Managed processes: started detached, found by PID file, stopped for good."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mlops_operator.localcluster.processes import ManagedProcess


def test_start_is_idempotent_and_stop_ends_the_process(tmp_path: Path) -> None:
    process = ManagedProcess("sleeper", tmp_path)
    pid = process.start(
        [sys.executable, "-c", "import time; print('hi', flush=True); time.sleep(60)"]
    )
    try:
        assert process.pid() == pid
        assert process.start([sys.executable, "-c", "pass"]) == pid
    finally:
        assert process.stop(grace_seconds=5)
    assert process.pid() is None
    assert not Path(f"/proc/{pid}").exists()
    assert not process.stop(), "stopping a stopped process reports nothing stopped"


def test_a_process_ignoring_sigterm_is_killed(tmp_path: Path) -> None:
    process = ManagedProcess("stubborn", tmp_path)
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('x', flush=True); time.sleep(60)"
    process.start([sys.executable, "-c", code])
    assert process.stop(grace_seconds=0.5)
    assert process.pid() is None


def test_a_recycled_pid_is_not_ours(tmp_path: Path) -> None:
    process = ManagedProcess("gone", tmp_path)
    process.pid_file.parent.mkdir(parents=True)
    # Our own PID runs python, not the recorded executable: it must not be treated as ours.
    process.pid_file.write_text(f'{{"pid": {os.getpid()}, "exe": "/usr/bin/etcd", "argv": []}}')
    assert process.pid() is None
    assert not process.stop()
    assert Path(f"/proc/{os.getpid()}").exists()
