"""Test tiers and the shared local cluster.

Tests are marked by folder: ``tests/unit`` (pure, no cluster), ``tests/integration``
(the real API server) and ``tests/e2e`` (the whole loop). ``make test`` runs every
tier; ``pytest -m unit`` runs only the fast one. The local cluster (the one
``mlops cluster up`` starts; ``MLOPS_CLUSTER_DIR`` picks another) is brought up
once per session; a cluster that was already running is reused and left running,
one the session started is stopped at the end unless ``MLOPS_KEEP_CLUSTER=1``.
Each test works in namespaces of its own, so tests never see each other's objects.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_operator.localcluster.cluster import LocalCluster
from tests.kube import kubectl, wait_for

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
    cluster = LocalCluster()
    was_running = cluster.is_running()
    cluster.up()
    yield cluster
    if not was_running and os.environ.get("MLOPS_KEEP_CLUSTER") != "1":
        cluster.down()


@pytest.fixture(scope="session")
def kubeconfig(local_cluster: LocalCluster) -> Path:
    """The admin kubeconfig of the session's cluster."""
    return local_cluster.layout.admin_kubeconfig


@pytest.fixture
def namespace(kubeconfig: Path) -> Iterator[str]:
    """A fresh namespace (with its default ServiceAccount), deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    kubectl(kubeconfig, "create", "namespace", name)
    wait_for(
        lambda: (
            kubectl(kubeconfig, "-n", name, "get", "sa", "default", check=False).returncode == 0
        ),
        what="the namespace's default ServiceAccount",
    )
    yield name
    kubectl(kubeconfig, "delete", "namespace", name, "--wait=false", check=False)
