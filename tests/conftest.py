"""Test tiers and the shared local cluster.

Tests are marked by folder: ``tests/unit`` (pure, no cluster), ``tests/integration``
(the real API server) and ``tests/e2e`` (the whole loop). ``make test`` runs every
tier; ``pytest -m unit`` runs only the fast one. The cluster is brought up once
per session, in a state directory of its own so that a developer's running
cluster is never touched, and stopped at the end (``MLOPS_KEEP_CLUSTER=1`` keeps
it for the next run).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_operator.localcluster.binaries import cache_root
from mlops_operator.localcluster.cluster import LocalCluster

_TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with the tier of the folder it lives in."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in _TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[LocalCluster]:
    """The local cluster, up for the whole session."""
    state_dir = Path(os.environ.get("MLOPS_TEST_CLUSTER_DIR", cache_root() / "test-cluster"))
    cluster = LocalCluster(state_dir)
    cluster.up()
    yield cluster
    if os.environ.get("MLOPS_KEEP_CLUSTER") != "1":
        cluster.down()


@pytest.fixture(scope="session")
def kubeconfig(local_cluster: LocalCluster) -> Path:
    """The admin kubeconfig of the session's cluster."""
    return local_cluster.layout.admin_kubeconfig
