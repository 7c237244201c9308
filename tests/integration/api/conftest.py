"""Fixtures of the API tests: the generated CRDs installed, and a namespace per module."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_operator.api import KINDS
from tests.integration.api.support import ROOT
from tests.kube import delete_namespace, kubectl, wait_established


@pytest.fixture(scope="session")
def crds(kubeconfig: Path) -> Path:
    """The generated CRDs, applied and Established; returns the kubeconfig that reaches them."""
    kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    names = [f"crd/{kind.crd.name}" for kind in KINDS]
    wait_established(kubeconfig, *names)
    return kubeconfig


@pytest.fixture(scope="module")
def namespace(crds: Path) -> Iterator[str]:
    """A namespace of its own for one test module, deleted afterwards (without waiting)."""
    name = f"api-{uuid.uuid4().hex[:8]}"
    kubectl(crds, "create", "namespace", name)
    yield name
    delete_namespace(crds, name)
