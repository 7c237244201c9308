"""The parallel suite's grouping holds: tests marked with one xdist_group share one worker.

The e2e tests share a session's closed loop (minutes) and the chart tests fixed-name
cluster roles only because their group keeps them on one worker. pytest-xdist groups by
rewriting node ids, which some pytest releases silently ignore (pytest 9.2): the tests
still pass, each worker then running the loop itself. This runs a small suite on two
workers with the project's pytest settings and counts where a grouped fixture was made.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ports import free_port
from tests.suite import UNIT_PORTS

CONFTEST = """
import os
import pytest

@pytest.fixture(scope="session")
def shared():
    with open(os.environ["MADE"], "a") as out:
        out.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")
"""
GROUPED = """
import time
import pytest

pytestmark = pytest.mark.xdist_group("together")

def test_{name}(shared):
    time.sleep(0.5)
"""


def test_tests_of_one_group_share_a_worker_and_its_session_fixtures(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text(CONFTEST)
    for name in ("a", "b", "c"):
        (suite / f"test_{name}.py").write_text(GROUPED.format(name=name))
    (suite / "test_free.py").write_text(
        "".join(f"def test_free_{i}():\n    pass\n\n" for i in range(6))
    )
    made = tmp_path / "made"
    answer = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2",
         "--dist=loadgroup", f"--basetemp={tmp_path / 'base'}", "-q", str(suite)],
        cwd=suite, env={**os.environ, "MADE": str(made)},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert answer.returncode == 0, answer.stdout + answer.stderr
    workers = made.read_text().split()
    assert len(workers) == 1, f"the grouped tests' session fixture was made on {workers}"


ROOT = Path(__file__).resolve().parents[2]
# One module of each kind: unit, a cluster test run in parallel, a serial one. Each has
# light imports: the phases' collections run four times, in the unit phase (a module under
# modeldeployment/ would import scikit-learn each time, 2 CPU-s).
MODULES = {
    "unit": "tests/unit/test_suite.py",
    "parallel": "tests/integration/localcluster/test_kube_reads.py",
    "serial": "tests/integration/chart/test_ha.py",
}


def _collected(*arguments: str) -> set[str]:
    answer = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
         *arguments, *MODULES.values()],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert answer.returncode == 0, answer.stdout + answer.stderr
    return {line.split("::")[0] for line in answer.stdout.splitlines() if "::" in line}


def test_each_phase_of_make_test_runs_its_own_tests_and_all_of_them_run() -> None:
    # make test's phases (tests/suite.py) split the suite: a test in none is never run, a
    # test in two runs twice, and a cluster test in the unit phase runs beside the serial ones.
    assert _collected() == set(MODULES.values())
    for phase, module in MODULES.items():
        assert _collected(f"--suite-phase={phase}") == {module}, phase


def test_the_unit_phase_takes_ports_the_serial_phase_is_never_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Both phases have workers gw0 and gw1 and run at once: the blocks they pick from must
    # not meet, or one phase's server finds its port taken (Address already in use).
    def blocks(environment: dict[str, str]) -> set[int]:
        for name in UNIT_PORTS:
            monkeypatch.delenv(name, raising=False)
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        found = set()
        for worker in ("gw0", "gw1"):
            monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
            found |= {free_port() // 1_000 for _ in range(3)}
        return found

    serial = blocks({})
    unit = blocks(UNIT_PORTS)  # what tests/suite.py gives the unit phase
    assert len(serial) == len(unit) == 2
    assert not serial & unit
