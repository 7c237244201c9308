"""Helm (built from its Go module and cached like the cluster binaries) and the chart's paths."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_operator.localcluster.binaries import HELM, KUBERNETES, ensure_binaries
from tests.integration.operator.conftest import crds
from tests.kube import GO_SHORT_LIVED
from tests.unit.chart.rendered import REPO

CHART = REPO / "charts" / "mlops-operator"
OVERLAYS = sorted(p.parent for p in (REPO / "manifests" / "overlays").glob("*/kustomization.yaml"))
KUBECTL = KUBERNETES.path("kubectl")

__all__ = ["CHART", "KUBECTL", "OVERLAYS", "Helm", "crds", "helm", "helm_binary", "run"]

Helm = Callable[..., subprocess.CompletedProcess[str]]


def run(
    command: list[str],
    *,
    env: dict[str, str] | None = None,
    check: bool = True,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run a command; raise with its output when `check` and it fails."""
    proc = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def helm_binary() -> Path:
    """The cached helm (built on first use: a few minutes)."""
    ensure_binaries((HELM,))
    return HELM.path("helm")


@pytest.fixture(scope="session")
def helm(helm_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """`helm ARGS...` with its own config and cache directories (no repositories, no network)."""
    home = tmp_path_factory.mktemp("helm-home")
    env = {
        "HOME": str(home),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_DATA_HOME": str(home / "data"),
        "PATH": "/usr/bin:/bin",
        **GO_SHORT_LIVED,
    }

    def helm(
        *args: str, kubeconfig: Path | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        extra = {"KUBECONFIG": str(kubeconfig)} if kubeconfig else {}
        return run([str(helm_binary), *args], env={**env, **extra}, check=check)

    return helm
