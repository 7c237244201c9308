"""The chart's in-cluster console: read only, with a ServiceAccount of its own, in its namespaces.

Aspects: with ``console.enabled`` and ``console.namespaces`` the release runs ``mlops
console`` from the operator image as a restricted pod that gets Ready once it has listed;
over HTTP (as ``kubectl port-forward`` delivers it, Host localhost) it shows the objects
of its namespace and refuses another namespace's; it answers nothing but GET; its
ServiceAccount may get, list and watch the mlops kinds in its namespace and nothing
else (no writes, no Secrets, no other namespace), as the API server says.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.console import model_version, scratch_namespace
from tests.integration.chart.conftest import CHART, Helm
from tests.integration.chart.test_install import _can
from tests.kube import get_json, kubectl, wait_for


@pytest.fixture
def shown(kubeconfig: Path) -> Iterator[str]:
    """The namespace the console may read."""
    with scratch_namespace(kubeconfig, "console") as name:
        yield name


@pytest.fixture
def other(kubeconfig: Path) -> Iterator[str]:
    """A namespace the console may not read."""
    with scratch_namespace(kubeconfig, "hidden") as name:
        yield name


def _ready_pod(kubeconfig: Path, namespace: str) -> dict[str, Any] | None:
    pods = get_json(
        kubeconfig, "pods", "-n", namespace, "-l", "app.kubernetes.io/component=console"
    )
    for pod in pods["items"]:
        conditions = pod.get("status", {}).get("conditions", [])
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
            return dict(pod)
    return None


def _get(url: str, method: str = "GET") -> tuple[int, str]:
    request = urllib.request.Request(url, method=method, headers={"Host": "localhost"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_console_runs_in_the_cluster_read_only(
    helm: Helm, kubeconfig: Path, crds: list[Path], namespace: str, shown: str, other: str
) -> None:
    kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(model_version(shown, "gamma")))
    kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(model_version(other, "delta")))
    release = f"mlops-operator-{namespace}"
    helm(
        "install",
        release,
        str(CHART),
        "-n",
        namespace,
        "--set",
        "crds.enabled=false",  # the session's CRDs are shared with other tests
        "--set",
        "rbac.userRoles=false",  # cluster-wide roles another release may own
        # The operator watches its own (empty) namespace: the console needs none, and an
        # operator uninstalled first would leave its finalizers on the objects it saw.
        "--set",
        f"operator.watchNamespaces={{{namespace}}}",
        "--set",
        "console.enabled=true",
        "--set",
        f"console.namespaces={{{shown}}}",
        "--wait",
        "--timeout",
        "3m",
        kubeconfig=kubeconfig,
    )
    try:
        pod = wait_for(
            lambda: _ready_pod(kubeconfig, namespace), timeout=180, what="a Ready console pod"
        )
        account = f"system:serviceaccount:{namespace}:{pod['spec']['serviceAccountName']}"
        assert pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"]
        url = f"http://{pod['status']['podIP']}:8090"

        status, page = _get(url + "/")
        assert status == 200
        assert "gamma-v1" in page
        assert "delta-v1" not in page
        status, page = _get(f"{url}/ns/{other}/versions/delta-v1")
        assert status == 403
        assert (_get(url + "/", method="POST"))[0] == 405

        assert _can(kubeconfig, account, "list", "modelversions.mlops.dev", shown)
        assert _can(kubeconfig, account, "watch", "driftpolicies.mlops.dev", shown)
        for verb, resource in (
            ("create", "trainingjobs.mlops.dev"),
            ("patch", "modeldeployments.mlops.dev"),
            ("delete", "modelversions.mlops.dev"),
            ("patch", "modelversions.mlops.dev/status"),
            ("get", "secrets"),
            ("list", "pods"),
        ):
            assert not _can(kubeconfig, account, verb, resource, shown), (verb, resource)
        assert not _can(kubeconfig, account, "list", "modelversions.mlops.dev", other)
    finally:
        helm("uninstall", release, "-n", namespace, "--wait", kubeconfig=kubeconfig, check=False)
