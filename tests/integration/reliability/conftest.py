"""Fixtures of the reliability tests: TrainingJobs, the model store, a private control plane.

The shared cluster carries every helper's tests, so faults that would break it
(stopping kube-apiserver or etcd) are injected into a private control plane of
this session's own (`LocalCluster(..., with_node=False)`: no pods run there, so
those tests use suspended TrainingJobs, whose reconciliation needs no node).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from mlops_operator.localcluster.cluster import LocalCluster
from tests.integration.modeldeployment.conftest import restricted, store  # noqa: F401  # fixtures
from tests.integration.operator.conftest import CRDS, crds  # noqa: F401  # a fixture
from tests.integration.trainingjob.conftest import namespace, operator  # noqa: F401  # fixtures
from tests.kube import exists, kubectl, wait_established, wait_for


@pytest.fixture(scope="module")
def private_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A control plane (etcd, API server, controller-manager, scheduler) of this module's own."""
    cluster = LocalCluster(tmp_path_factory.mktemp("control-plane"), with_node=False)
    try:
        cluster.up()
        config = cluster.layout.admin_kubeconfig
        kubectl(config, "apply", "--server-side", *(f"-f={p}" for p in CRDS))
        names = [f"crd/{p.stem.split('_', 1)[1]}.mlops.dev" for p in CRDS]
        wait_established(config, *names)
        yield cluster
    finally:
        cluster.down()


@pytest.fixture
def private_namespace(private_cluster: LocalCluster) -> str:
    """A fresh restricted namespace on the private control plane (thrown away with it)."""
    config = private_cluster.layout.admin_kubeconfig
    name = f"cp-{uuid.uuid4().hex[:8]}"
    kubectl(config, "create", "namespace", name)
    kubectl(config, "label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted")
    wait_for(
        lambda: exists(config, "-n", name, "sa", "default"),
        what="the namespace's default ServiceAccount",
    )
    return name
