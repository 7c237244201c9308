"""The HTTPRoute a ModelDeployment gets where the Gateway API is served.

Aspects: the route's parent is the ModelDeployment's Service (mesh binding), its
backends are the versions' Services with the rollout's exact weights, it is owned
by the ModelDeployment; only an Accepted condition for that parent counts.
"""

from __future__ import annotations

from typing import Any

from mlops_operator.api.modeldeployment import ModelDeployment
from mlops_operator.resources.routing import accepted, http_route

MDEP = ModelDeployment.model_validate(
    {
        "apiVersion": "mlops.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "iris", "namespace": "team", "uid": "u-1"},
        "spec": {"modelName": "iris"},
    }
)


def test_the_route_splits_the_services_requests_by_the_rollouts_weights() -> None:
    route = http_route(MDEP, {2: 10, 1: 90})

    assert (route["apiVersion"], route["kind"]) == ("gateway.networking.k8s.io/v1", "HTTPRoute")
    assert route["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert route["spec"]["parentRefs"] == [
        {"group": "", "kind": "Service", "name": "iris", "port": 80}
    ]
    assert route["spec"]["rules"] == [
        {
            "backendRefs": [
                {"group": "", "kind": "Service", "name": "iris-v1", "port": 80, "weight": 90},
                {"group": "", "kind": "Service", "name": "iris-v2", "port": 80, "weight": 10},
            ]
        }
    ]


def _status(kind: str, name: str, accepted_status: str) -> dict[str, Any]:
    return {
        "status": {
            "parents": [
                {
                    "parentRef": {"kind": kind, "name": name},
                    "controllerName": "mesh.example/controller",
                    "conditions": [{"type": "Accepted", "status": accepted_status}],
                }
            ]
        }
    }


def test_only_an_implementation_accepting_the_services_route_counts() -> None:
    assert accepted(_status("Service", "iris", "True"), MDEP)
    assert not accepted(_status("Service", "iris", "False"), MDEP)
    assert not accepted(_status("Gateway", "iris", "True"), MDEP)
    assert not accepted(_status("Service", "other", "True"), MDEP)
    assert not accepted({}, MDEP)
