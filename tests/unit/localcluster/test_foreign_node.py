"""A node another checkout started is told apart from ours, by the Python it runs.

The node runs every pod's Python from its own environment: a cluster brought up by one
checkout's `make demo` ran that checkout's code in the pods of another checkout's `make test`.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_operator.localcluster.cluster import LocalCluster
from mlops_operator.localcluster.processes import ManagedProcess

SLEEP = "import time; time.sleep(60)"


@pytest.fixture
def node(tmp_path: Path) -> Iterator[ManagedProcess]:
    process = ManagedProcess("local-node", tmp_path)
    yield process
    process.stop(grace_seconds=5)


def test_the_recorded_command_line_is_read_back_while_the_process_runs(
    node: ManagedProcess,
) -> None:
    assert node.argv() is None
    node.start([sys.executable, "-c", SLEEP])
    assert node.argv() == [sys.executable, "-c", SLEEP]
    node.stop(grace_seconds=5)
    assert node.argv() is None


def test_a_node_of_this_environment_is_ours(tmp_path: Path, node: ManagedProcess) -> None:
    node.start([sys.executable, "-c", SLEEP])
    assert LocalCluster(tmp_path).foreign_node() is None
    assert LocalCluster(tmp_path, with_node=False).foreign_node() is None


def test_a_node_of_another_environment_is_foreign(tmp_path: Path, node: ManagedProcess) -> None:
    # Another environment's Python: <other>/bin/python, a real executable to run.
    other = tmp_path / "other-checkout" / ".venv"
    (other / "bin").mkdir(parents=True)
    python = other / "bin" / "python"
    shutil.copy2(Path(sys.executable).resolve(), python)
    node.start([str(python), "-c", SLEEP])
    assert LocalCluster(tmp_path).foreign_node() == other.resolve()
