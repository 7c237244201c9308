"""The console shows a person what Kubernetes RBAC lets them read, and nothing else.

A user (a client certificate signed by the cluster's CA, so a real user name) is bound
to the chart's viewer rules (``mlops-operator-viewer``) in one namespace only. Aspects, in Debian's
chromium: the console started with that user's kubeconfig reads that namespace alone
(and says so), lists its model and not the other namespace's; a page of the other
namespace is refused; asked for the other namespace explicitly, it shows the API
server's refusal instead of objects; the same console with the admin's kubeconfig sees
both namespaces (so the filtering is RBAC's, not the console's).
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mlops_operator.localcluster.cluster import LocalCluster
from mlops_operator.localcluster.pki import ClientIdentity, ensure_client_cert
from tests.console import browser, model_version, scratch_namespace, start_console
from tests.kube import kubectl
from tests.unit.chart.rendered import BASE, by_kind, documents


@pytest.fixture
def other_namespace(kubeconfig: Path) -> Iterator[str]:
    with scratch_namespace(kubeconfig, "t") as name:
        yield name


@pytest.fixture
def viewer(
    local_cluster: LocalCluster, kubeconfig: Path, namespace: str, tmp_path: Path
) -> Iterator[Path]:
    """The kubeconfig of a user bound to the chart's viewer rules in `namespace` only."""
    user = f"viewer-{uuid.uuid4().hex[:8]}"
    role = f"mlops-viewer-{user}"  # the chart's rules under a name no other test uses
    chart_role = next(
        r
        for r in by_kind(documents(BASE.read_text()), "ClusterRole")
        if r["metadata"]["name"] == "mlops-operator-viewer"
    )
    manifests = [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": role},
            "rules": chart_role["rules"],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": user, "namespace": namespace},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    ]
    for manifest in manifests:
        kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(manifest))
    pki = tmp_path / "pki"
    pki.mkdir()
    for name in ("ca.crt", "ca.key"):
        shutil.copy(local_cluster.layout.pki / name, pki / name)
    cert, key = ensure_client_cert(pki, ClientIdentity(user, user))
    admin = yaml.safe_load(kubeconfig.read_text())
    cluster = admin["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [
            {"name": user, "user": {"client-certificate": str(cert), "client-key": str(key)}}
        ],
        "contexts": [
            {
                "name": user,
                "context": {"cluster": cluster["name"], "user": user, "namespace": namespace},
            }
        ],
        "current-context": user,
    }
    path = tmp_path / "viewer.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    yield path
    kubectl(kubeconfig, "delete", "clusterrole", role, "--wait=false", check=False)


def test_a_viewer_of_one_namespace_sees_that_namespace_and_nothing_else(
    kubeconfig: Path,
    crds: list[Path],
    namespace: str,
    other_namespace: str,
    viewer: Path,
    tmp_path: Path,
) -> None:
    for ns, model in ((namespace, "alpha"), (other_namespace, "beta")):
        kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(model_version(ns, model)))
    # The viewer may not read the other namespace (checked against the API server itself).
    assert (
        "Forbidden"
        in kubectl(
            viewer, "get", "modelversions.mlops.dev", "-n", other_namespace, check=False
        ).stderr
    )

    with start_console(viewer, tmp_path / "viewer.log") as console, browser() as chromium:
        assert f"reading {namespace} (your kubeconfig's namespace)" in console.banner
        page = chromium.new_page()
        page.goto(console.url + "/")
        page.get_by_role("heading", name="alpha").wait_for()
        body = page.locator("body").inner_text()
        assert "alpha-v1" in body
        assert "beta" not in body
        assert other_namespace not in body
        navigation = page.get_by_role("navigation", name="Main").inner_text()
        assert namespace in navigation
        assert other_namespace not in navigation

        response = page.goto(f"{console.url}/ns/{other_namespace}/versions/beta-v1")
        assert response is not None
        assert response.status == 403
        assert "outside what this console reads" in page.get_by_role("alert").inner_text()

    # Asked for the other namespace by name, the console shows the API server's refusal.
    asked = start_console(viewer, tmp_path / "asked.log", "-n", other_namespace)
    with asked as console, browser() as chromium:
        page = chromium.new_page()
        page.goto(console.url + "/")
        page.get_by_role("alert").first.wait_for()
        alerts = "\n".join(page.get_by_role("alert").all_inner_texts())
        for kind in ("TrainingJobs", "ModelVersions", "ModelDeployments", "DriftPolicies"):
            assert f"Cannot read {kind} in namespace {other_namespace}" in alerts
        assert "forbidden" in alerts
        assert "beta-v1" not in page.locator("body").inner_text()

    # The admin's console sees both: what the viewer missed was RBAC's doing.
    with start_console(kubeconfig, tmp_path / "admin.log") as console, browser() as chromium:
        assert "reading every namespace" in console.banner
        page = chromium.new_page()
        page.goto(f"{console.url}/?namespace={other_namespace}")
        page.get_by_role("heading", name="beta").wait_for()
        page.goto(f"{console.url}/?namespace={namespace}")
        page.get_by_role("heading", name="alpha").wait_for()
