"""Helm built from its Go module: the link-time flags that make it report and assume the truth.

Without them `helm version` prints no version and offline `helm template`/`helm lint` assume
Kubernetes 1.20, which the chart's `kubeVersion: >=1.30` refuses.
"""

from __future__ import annotations

from mlops_operator.localcluster import binaries


def test_helm_is_told_its_version_and_the_clusters_kubernetes_minor() -> None:
    flags = binaries._helm_ldflags("v3.21.4", "v1.36.3").split(" -X ")
    assert "helm.sh/helm/v3/internal/version.version=v3.21.4" in flags
    for package in ("helm.sh/helm/v3/pkg/chartutil", "helm.sh/helm/v3/pkg/lint/rules"):
        assert f"{package}.k8sVersionMajor=1" in flags
        assert f"{package}.k8sVersionMinor=36" in flags


def test_helm_is_cached_beside_the_cluster_binaries() -> None:
    assert binaries.HELM.directory.parent == binaries.KUBERNETES.directory.parent
    assert binaries.HELM.binaries == ("helm",)
