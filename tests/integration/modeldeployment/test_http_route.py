"""Where the Gateway API is installed, a canary's weights are also written as an HTTPRoute.

The Gateway API's HTTPRoute CRD comes from its Go module (`gateway_api_crds`). No
mesh implements it here, so the test checks what the operator writes: the route
owned by the ModelDeployment, its parent the ModelDeployment's Service, its
backends the versions' Services with the step's weights, while the champion's
servers forward the canary's share themselves; then it accepts the route as a
mesh controller would (a status write) and checks that the servers stop
forwarding, so no request is split twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_operator.localcluster.binaries import gateway_api_crds
from tests.integration.modeldeployment.conftest import model_version, serve_first_of_two
from tests.integration.operator.conftest import RunningOperator
from tests.kube import exists, find_json, get_json, kubectl, wait_established, wait_for

CRD = "httproutes.gateway.networking.k8s.io"
MDEP = {
    "apiVersion": "mlops.dev/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "iris"},
    "spec": {
        "modelName": "iris",
        "replicas": 1,
        "rollout": {
            "strategy": "Canary",
            "canary": {"steps": [{"weight": 20, "pause": "1h"}, {"weight": 100, "pause": "1h"}]},
            "analysis": {"interval": "1h"},
        },
    },
}


@pytest.fixture
def gateway_api(kubeconfig: Path) -> Iterator[None]:
    """The HTTPRoute CRD (standard channel), installed for the test when missing."""
    present = kubectl(kubeconfig, "get", "crd", CRD, check=False).returncode == 0
    path = gateway_api_crds() / "gateway.networking.k8s.io_httproutes.yaml"
    if not present:
        kubectl(kubeconfig, "apply", "--server-side", "-f", str(path))
        wait_established(kubeconfig, CRD)
    yield
    if not present:
        # Operators of other tests notice within a minute and go back to forwarding alone.
        kubectl(kubeconfig, "delete", "crd", CRD, "--wait=false", check=False)


def _env(kubeconfig: Path, ns: str, name: str) -> dict[str, str]:
    deployment = get_json(kubeconfig, "-n", ns, "deployment", name)
    if deployment["status"].get("observedGeneration") != deployment["metadata"]["generation"]:
        return {}
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def _accept(kubeconfig: Path, ns: str, route: dict[str, Any]) -> None:
    """Write the status a mesh controller writes when it takes the route on."""
    status = {
        "status": {
            "parents": [
                {
                    "parentRef": route["spec"]["parentRefs"][0],
                    "controllerName": "mesh.example.com/test",
                    "conditions": [
                        {
                            "type": "Accepted",
                            "status": "True",
                            "reason": "Accepted",
                            "message": "taken on by the test's stand-in mesh",
                            "observedGeneration": route["metadata"]["generation"],
                            "lastTransitionTime": "2026-12-01T00:00:00Z",
                        }
                    ],
                }
            ]
        }
    }
    kubectl(kubeconfig, "-n", ns, "patch", "httproute", "iris", "--subresource=status",
            "--type=merge", "-p", json.dumps(status))  # fmt: skip


def test_the_canary_weights_are_written_as_an_owned_http_route(
    kubeconfig: Path, gateway_api: None, restricted: str, store: Path, operator: RunningOperator
) -> None:
    ns = restricted
    _, (k2, c2) = serve_first_of_two(kubeconfig, ns, store, MDEP)
    wait_for(lambda: exists(kubeconfig, "-n", ns, "httproute", "iris"),
             timeout=60, what="the champion's HTTPRoute")  # fmt: skip
    kubectl(kubeconfig, "-n", ns, "apply", "-f", "-",
            stdin=json.dumps(model_version("iris-v2", "iris", 2, k2, c2)))  # fmt: skip

    def weighted() -> dict[str, Any] | None:
        found = get_json(kubeconfig, "-n", ns, "httproute", "iris")
        backends = found["spec"]["rules"][0]["backendRefs"]
        return found if len(backends) == 2 else None

    route = wait_for(weighted, timeout=180, what="the route split between two versions")
    mdep = get_json(kubeconfig, "-n", ns, "mdep", "iris")
    (owner,) = route["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == (
        "ModelDeployment", mdep["metadata"]["uid"], True,
    )  # fmt: skip
    assert route["spec"]["parentRefs"] == [
        {"group": "", "kind": "Service", "name": "iris", "port": 80}
    ]
    backends = {
        b["name"]: (b["kind"], b["port"], b["weight"])
        for b in route["spec"]["rules"][0]["backendRefs"]
    }
    assert backends == {"iris-v1": ("Service", 80, 80), "iris-v2": ("Service", 80, 20)}
    for version in (1, 2):
        # The route may be written before the canary's Service: wait for it, then check it.
        service = wait_for(
            lambda: find_json(kubeconfig, "-n", ns, "service", f"iris-v{version}"),  # noqa: B023
            timeout=60, what=f"the Service of v{version}",
        )  # fmt: skip
        assert service["spec"]["selector"]["mlops.dev/version"] == str(version)
    # Nobody implements the route here: the champion's servers forward the canary's share.
    wait_for(
        lambda: _env(kubeconfig, ns, "iris-v1").get("MLOPS_CANARY_PERCENT") == "20",
        timeout=120, what="the champion forwarding 20 %",
    )  # fmt: skip
    assert _env(kubeconfig, ns, "iris-v1")["MLOPS_CANARY_URL"] == (
        f"http://iris-v2.{ns}.svc.cluster.local:80"
    )

    _accept(kubeconfig, ns, route)

    # A mesh splits the requests now: the servers must not split them again.
    wait_for(
        lambda: (env := _env(kubeconfig, ns, "iris-v1")) and "MLOPS_CANARY_URL" not in env,
        timeout=120, what="the champion no longer forwarding",
    )  # fmt: skip
