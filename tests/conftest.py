"""Test tiers, the shared local cluster, and how the suite runs in parallel.

Tests are marked by folder: ``tests/unit`` (pure, no cluster), ``tests/integration``
(the real API server) and ``tests/e2e`` (the whole loop). ``make test`` runs every
tier; ``pytest -m unit`` runs only the fast one. The local cluster (the one
``mlops cluster up`` starts; ``MLOPS_CLUSTER_DIR`` picks another) is brought up
once; a cluster that was already running is reused and left running, one the run
started is stopped at the end unless ``MLOPS_KEEP_CLUSTER=1``.

**Parallel unless marked.** ``make test`` (``tests/suite.py``) runs the suite on
pytest-xdist workers that share that one cluster, then the tests marked ``serial``
by themselves. ``pytest -n 4`` by hand runs both at once, the serial tests one after another on
one worker. So a test must be
safe beside any other test at any moment:

- its objects live in namespaces of its own (the ``namespace`` fixtures make fresh
  ones), and it lists, counts and watches only those namespaces;
- a cluster-scoped object it creates has a name of its own (the namespace's name in
  it) and is deleted afterwards; a cluster-wide policy it installs is scoped (e.g. by
  a namespace label) so that it never touches other tests' namespaces;
- a loopback port comes from ``free_port()`` just before it is bound;
- it waits for the condition it asserts, never for a proxy of it (a sleep, another
  writer's field, a different object's state), since a loaded machine reorders them.

**Mark a test ``serial``** (``@pytest.mark.serial`` or a module's ``pytestmark``) only
when what it asserts depends on the machine's latency (a p99 limit in a canary's
analysis, failures counted within a drain delay, a deadline on a schedule), and say
why beside the mark. Serial tests run once the parallel ones are done, with nothing else
of the suite running, two at a time: each in its lane (``@pytest.mark.serial(lane=2)``;
lane 1 unless it says), a lane's tests one after another. The lanes are balanced by
hand (test_rollout alone in lane 1, the shorter ones in lane 2), since a serial test
lengthens its lane by its whole duration; prefer a test that does not depend on timing.

Tests that must take turns, but not alone, carry ``pytest.mark.xdist_group(name)``:
with ``--dist=loadgroup`` (set in pyproject.toml) a group runs on one worker. Tests that
share a costly session- or module-scoped fixture (the closed loop, a private control
plane) are grouped so that it is made once, not once per worker; tests that create
cluster-wide objects with fixed names (the chart's user roles), so that they never meet.
docs/testing.md lists the marked tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_operator.localcluster.cluster import LocalCluster
from tests.kube import delete_namespace, exists, kubectl, wait_for
from tests.suite import SERIAL_LANES

_TIERS = ("unit", "integration", "e2e")
# Longest first: xdist hands tests out in collection order, so the loop and the
# integration tests start at once (`make test` runs the unit tests in a phase of their own;
# in a run by hand, the many short ones fill the gaps at the end).
_ORDER = {"e2e": 0, "integration": 1, "unit": 2}
_PHASES = ("all", "parallel", "serial", "unit")
_CLUSTER_WAS_RUNNING = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--suite-phase",
        choices=_PHASES,
        default="all",
        help="run only the integration and e2e tests not marked serial (parallel), only "
        "those marked serial (serial), only the unit tests not marked serial (unit), or all "
        "(the default); tests/suite.py runs the three phases",
    )


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    if not _is_worker(config):
        config.stash[_CLUSTER_WAS_RUNNING] = LocalCluster().is_running()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the cluster this run started (the controller does it, after every worker)."""
    if _is_worker(config) or os.environ.get("MLOPS_KEEP_CLUSTER") == "1":
        return
    if not config.stash.get(_CLUSTER_WAS_RUNNING, True):
        cluster = LocalCluster()
        if cluster.is_running():
            cluster.down()


def _tier(path: Path, config: pytest.Config) -> str | None:
    """The tier whose folder holds `path`, relative to the checkout (a clone under
    /tmp/e2e/ is no reason to mark anything)."""
    try:
        parts = path.relative_to(config.rootpath).parts
    except ValueError:
        return None
    return next((tier for tier in _TIERS if tier in parts), None)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """In a phase of `make test`, the modules of the tiers it does not run are not even
    imported: the controller and every worker collect, and the unit modules alone cost
    each of them about 2.6 CPU-seconds (scikit-learn, onnxruntime, the trainer)."""
    phase = config.getoption("--suite-phase")
    tier = _tier(collection_path, config)
    if phase == "all" or tier is None:
        return None
    return (tier == "unit") != (phase == "unit") or None


@pytest.hookimpl(tryfirst=True)  # before xdist reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its folder's tier; order and select them for the phase."""
    tier_of: dict[str, int] = {}
    for item in items:
        tier = _tier(item.path, config)
        if tier is not None:
            item.add_marker(getattr(pytest.mark, tier))
            tier_of[item.nodeid] = _ORDER[tier]
    items.sort(key=lambda item: tier_of.get(item.nodeid, len(_ORDER)))

    phase = config.getoption("--suite-phase")
    if phase == "all":
        # Run by hand with -n: the serial tests at least run one after another.
        for item in items:
            if item.get_closest_marker("serial"):
                item.add_marker(pytest.mark.xdist_group("serial"))
        return
    keep = [item for item in items if _phase_of(item) == phase]
    if len(keep) < len(items):
        kept = {id(item) for item in keep}
        config.hook.pytest_deselected(items=[item for item in items if id(item) not in kept])
        items[:] = keep
    if phase == "serial":
        # Each lane is a group: its tests run one after another on one of the phase's workers.
        for item in items:
            item.add_marker(pytest.mark.xdist_group(f"serial-lane-{_lane(item)}"))


def _phase_of(item: pytest.Item) -> str:
    """The phase of `make test` that runs `item` (tests/suite.py)."""
    if item.get_closest_marker("serial"):
        return "serial"
    return "unit" if item.get_closest_marker("unit") else "parallel"


def _lane(item: pytest.Item) -> int:
    """The serial lane `item` runs in (``@pytest.mark.serial(lane=2)``; 1 unless it says)."""
    marker = item.get_closest_marker("serial")
    lane = marker.kwargs.get("lane", 1) if marker else 1
    if lane not in range(1, SERIAL_LANES + 1):
        raise pytest.UsageError(f"{item.nodeid}: serial lane {lane!r} is not 1 to {SERIAL_LANES}")
    return int(lane)


@pytest.fixture(scope="session")
def local_cluster() -> LocalCluster:
    """The local cluster, up for the whole run (each worker's `up` finds it running)."""
    cluster = LocalCluster()
    cluster.up()
    return cluster


@pytest.fixture(scope="session")
def kubeconfig(local_cluster: LocalCluster) -> Path:
    """The admin kubeconfig of the run's cluster."""
    return local_cluster.layout.admin_kubeconfig


@pytest.fixture
def namespace(kubeconfig: Path) -> Iterator[str]:
    """A fresh namespace (with its default ServiceAccount), deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    kubectl(kubeconfig, "create", "namespace", name)
    wait_for(
        lambda: exists(kubeconfig, "-n", name, "sa", "default"),
        what="the namespace's default ServiceAccount",
    )
    yield name
    delete_namespace(kubeconfig, name)
