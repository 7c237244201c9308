"""`make test`'s pytest run: the local cluster brought up once, then the suite in two phases.

1. Every test not marked ``serial``, on ``MLOPS_TEST_WORKERS`` pytest-xdist workers
   (default 6: much of a test's time is spent waiting on the cluster, not on a CPU; six
   keep two cores busy where four left a fifth of them idle).
2. The ``serial`` tests, with nothing else of the suite running, in ``SERIAL_LANES``
   lanes: two at a time, each lane's tests one after another. What they assert depends on
   the machine's latency (see ``tests/conftest.py``): the parallel phase's load would push
   it past their limits, one other such test beside them leaves it far inside (a good
   canary's p99 3-7 ms against its 200 ms limit, a killed pod's failures over within
   0.5 s against the 5 s drain delay).

Both phases run on the one local cluster this brings up first, so no worker waits on a
cold start inside a test's timeout. A cluster that already ran (``make demo`` leaves
its cluster up) is reused and left running; one started here is stopped at the end
unless ``MLOPS_KEEP_CLUSTER=1``. Extra arguments go to both phases (``make test
PYTEST_ARGS='-k drift'``); the exit status is the first phase's failure, else the
second's. A phase that selects no test is not a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from mlops_operator.localcluster.cluster import LocalCluster

# pytest's exit status when the selection is empty.
_NO_TESTS = 5
# Serial tests run this many at a time, each lane's one after another (tests/conftest.py).
SERIAL_LANES = 2


def _phase(name: str, arguments: list[str]) -> int:
    command = [sys.executable, "-m", "pytest", f"--suite-phase={name}", *arguments]
    print(f"==> {name} tests: {' '.join(command[1:])}", flush=True)
    started = time.monotonic()
    status = subprocess.run(command, check=False).returncode
    # The machine's load beside the time: on a shared machine the time alone says little.
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    took = time.monotonic() - started
    print(f"==> {name} tests: exit {status} after {took:.0f} s (load {load})", flush=True)
    return 0 if status == _NO_TESTS else status


def main(arguments: list[str]) -> int:
    """Run both phases with `arguments`; the exit status of the run."""
    workers = os.environ.get("MLOPS_TEST_WORKERS", "6")
    cluster = LocalCluster()
    was_running = cluster.is_running()
    cluster.up()
    try:
        parallel = _phase("parallel", ["--numprocesses", workers, *arguments])
        serial = _phase("serial", ["--numprocesses", str(SERIAL_LANES), *arguments])
    finally:
        if not was_running and os.environ.get("MLOPS_KEEP_CLUSTER") != "1":
            cluster.down()
    return parallel or serial


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
