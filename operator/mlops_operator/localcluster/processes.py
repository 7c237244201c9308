"""Long-running child processes that outlive the command that started them.

`mlops cluster up` returns while etcd, the API server and the rest keep
running, so each process is started in its own session with its output in a
log file, and its PID is recorded together with the executable it runs. A PID
is only ever signalled while /proc still shows that executable: a recycled PID
belonging to something else is never killed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ManagedProcess"]


@dataclass(frozen=True)
class ManagedProcess:
    """A named background process with a PID file and a log file in `state_dir`."""

    name: str
    state_dir: Path

    @property
    def pid_file(self) -> Path:
        """Where the PID and executable of the running process are recorded."""
        return self.state_dir / "pids" / f"{self.name}.json"

    @property
    def log_file(self) -> Path:
        """The process's combined stdout and stderr."""
        return self.state_dir / "logs" / f"{self.name}.log"

    def start(
        self, command: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> int:
        """Start `command` detached; return its PID. A running instance is left alone."""
        existing = self.pid()
        if existing is not None:
            return existing
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
                cwd=cwd,
            )
        record = {"pid": proc.pid, "exe": os.path.realpath(command[0]), "argv": list(command)}
        self.pid_file.write_text(json.dumps(record))
        return proc.pid

    def pid(self) -> int | None:
        """The PID if the recorded process is still alive, else None."""
        try:
            record = json.loads(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        pid = int(record["pid"])
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            return None
        if exe.removesuffix(" (deleted)") != record["exe"]:
            return None
        if _is_zombie(pid):
            _reap(pid)
            return None
        return pid

    def argv(self) -> list[str] | None:
        """The command line the running process was started with; None when it does not run."""
        if self.pid() is None:
            return None
        try:
            record = json.loads(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return [str(arg) for arg in record.get("argv", [])]

    def stop(self, grace_seconds: float = 10.0) -> bool:
        """SIGTERM, wait up to `grace_seconds`, then SIGKILL. True if something was stopped."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        _signal_group(pid, signal.SIGTERM)
        if not _wait_gone(pid, grace_seconds):
            _signal_group(pid, signal.SIGKILL)
            _wait_gone(pid, 5)
        self.pid_file.unlink(missing_ok=True)
        return True


def _wait_gone(pid: int, timeout: float) -> bool:
    # The exe link vanishes while a process exits, before its /proc entry does.
    # "Gone" means no entry at all, or a zombie that is someone else's to reap; a
    # zombie child of ours is reaped here (a multi-threaded one only becomes
    # reapable once all its threads have exited, hence the loop).
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return True
        if _is_zombie(pid) and (_parent(pid) != os.getpid() or _reap(pid)):
            return True
        time.sleep(0.05)
    return False


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # Each process leads its own session, so its group holds any helpers it forked.
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, sig)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[-1].split()[1])


def _reap(pid: int) -> bool:
    """Reap a zombie child; True once it is reaped (by us or by anyone else)."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return reaped == pid
