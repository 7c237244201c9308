"""`make test`'s pytest run: the local cluster brought up once, then the suite in phases.

1. Every integration and e2e test not marked ``serial``, on ``MLOPS_TEST_WORKERS``
   pytest-xdist workers (default 6: much of a test's time is spent waiting on the
   cluster, not on a CPU; six keep two cores busy where four left a fifth of them idle).
2. The ``serial`` tests, with no other cluster test running, in ``SERIAL_LANES`` lanes:
   two at a time, each lane's tests one after another. What they assert depends on the
   machine's latency (see ``tests/conftest.py``): the parallel phase's load would push it
   past their limits, one other such test beside them leaves it far inside (a good
   canary's p99 3-7 ms against its 200 ms limit, a killed pod's failures over within
   0.5 s against the 5 s drain delay).

   Beside them, the ``unit`` tests (no cluster, about 75 CPU-seconds) run at a low share
   of the CPU (niceness ``UNIT_NICENESS`` on a scheduling group of their own), taking what
   the serial tests leave idle (about half of two cores) rather than adding to the
   parallel phase's saturated cores. A good canary's p99 stayed at 7 ms beside them.

Both cluster phases run on the one local cluster this brings up first, so no worker waits on a
cold start inside a test's timeout. A cluster that already ran (``make demo`` leaves
its cluster up) is reused and left running; one started here is stopped at the end
unless ``MLOPS_KEEP_CLUSTER=1``. Extra arguments go to every phase (``make test
PYTEST_ARGS='-k drift'``); the exit status is the first failing phase's, in the order
above with the unit phase last. A phase that selects no test is not a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time

from mlops_operator.localcluster.cluster import LocalCluster
from tests.ports import PORT_BLOCKS_SKIPPED

# pytest's exit status when the selection is empty.
_NO_TESTS = 5
# Serial tests run this many at a time, each lane's one after another (tests/conftest.py).
SERIAL_LANES = 2
# The unit phase's pytest-xdist workers, and the nice value of its scheduling group.
UNIT_WORKERS = 2
UNIT_NICENESS = 10
# Loopback ports come in blocks by worker name (tests/ports.py), and both the serial and
# the unit phase have a gw0 and a gw1: the unit phase takes the blocks after the serial
# one's (its controller's, then one per lane).
UNIT_PORTS = {PORT_BLOCKS_SKIPPED: str(1 + SERIAL_LANES)}


def _command(name: str, arguments: list[str]) -> list[str]:
    command = [sys.executable, "-m", "pytest", f"--suite-phase={name}", *arguments]
    print(f"==> {name} tests: {' '.join(command[1:])}", flush=True)
    return command


def _finished(name: str, status: int, took: float) -> int:
    # The machine's load beside the time: on a shared machine the time alone says little.
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"==> {name} tests: exit {status} after {took:.0f} s (load {load})", flush=True)
    return 0 if status == _NO_TESTS else status


def _phase(name: str, arguments: list[str]) -> int:
    started = time.monotonic()
    status = subprocess.run(_command(name, arguments), check=False).returncode
    return _finished(name, status, time.monotonic() - started)


def _second_to_all(pid: int) -> None:
    """Give the session of `pid` (the unit phase's) its niceness as a scheduling group: under
    the kernel's autogroup scheduler a session is a group, and a process's own niceness
    weighs only against the processes of its group, never against the cluster's or the
    serial tests'. Set once, it holds for every process of the session, the pytest-xdist
    workers it starts later included."""
    try:
        with open(f"/proc/{pid}/autogroup", "w") as group:
            group.write(str(UNIT_NICENESS))
    except OSError:
        pass  # no autogroup scheduling here: the processes' own niceness is what weighs


def _serial_beside_unit(arguments: list[str]) -> tuple[int, int]:
    """The serial phase in the foreground; the unit phase beside it, its output held back
    and printed once it ends so that the two never interleave."""
    with tempfile.TemporaryFile("w+") as output:
        started = time.monotonic()
        unit = subprocess.Popen(
            ["nice", "-n", str(UNIT_NICENESS),
             *_command("unit", ["--numprocesses", str(UNIT_WORKERS), *arguments])],
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, **UNIT_PORTS},
        )  # fmt: skip
        _second_to_all(unit.pid)
        # Its own time, whichever phase ends first.
        ended: list[float] = []

        def wait_for_unit() -> None:
            unit.wait()
            ended.append(time.monotonic())

        waiter = threading.Thread(target=wait_for_unit, daemon=True)
        waiter.start()
        try:
            serial = _phase("serial", ["--numprocesses", str(SERIAL_LANES), *arguments])
            waiter.join()
        finally:
            if unit.poll() is None:  # interrupted: its own session hears no Ctrl-C
                unit.terminate()
                unit.wait()
        output.seek(0)
        sys.stdout.write(output.read())
        return serial, _finished("unit", unit.returncode, ended[0] - started)


def main(arguments: list[str]) -> int:
    """Run the phases with `arguments`; the exit status of the run."""
    workers = os.environ.get("MLOPS_TEST_WORKERS", "6")
    cluster = LocalCluster()
    was_running = cluster.is_running()
    cluster.up()
    try:
        parallel = _phase("parallel", ["--numprocesses", workers, *arguments])
        serial, unit = _serial_beside_unit(arguments)
    finally:
        if not was_running and os.environ.get("MLOPS_KEEP_CLUSTER") != "1":
            cluster.down()
    return parallel or serial or unit


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
