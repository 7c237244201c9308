"""`up` and `down` of one cluster take turns: parallel test workers each bring it up."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from mlops_operator.localcluster.cluster import LocalCluster

# Holds the cluster's lifecycle lock, as an `up` in another process does, until stdin closes.
HOLD = (
    "import fcntl, sys; lock = open(sys.argv[1], 'a'); fcntl.flock(lock, fcntl.LOCK_EX);"
    " print('held', flush=True); sys.stdin.read()"
)


def test_down_waits_while_another_process_brings_the_cluster_up(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path, with_node=False)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path / "lifecycle.lock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None
    assert holder.stdout is not None
    done = threading.Event()
    stopped: list[list[str]] = []

    def down() -> None:
        stopped.append(cluster.down())
        done.set()

    thread = threading.Thread(target=down)
    try:
        assert holder.stdout.readline() == "held\n"
        thread.start()
        assert not done.wait(1.0), "down went ahead while another process held the lock"
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    thread.join(timeout=30)
    assert done.is_set(), "down never ran once the lock was released"
    assert stopped == [[]]
