"""The Gateway API HTTPRoute of a ModelDeployment: its versions' exact weights, for a mesh to apply.

When the cluster serves the Gateway API (``gateway.networking.k8s.io/v1``), the
operator keeps one HTTPRoute per ModelDeployment, named after it and owned by
it. The route's parent is the ModelDeployment's own Service (the Gateway API's
mesh binding, GAMMA): a mesh that implements it splits the requests sent to that
Service between the versions' Services (`version_service`) by the weights the
rollout decided. Until an implementation accepts the route (its status says so,
`accepted`), the champion's servers forward the canary's share themselves;
once it does, they stop, so a request is split once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlops_operator.api.modeldeployment import ModelDeployment
from mlops_operator.resources.common import labels, owner_reference
from mlops_operator.resources.modeldeployment import (
    SERVER_COMPONENT,
    SERVICE_PORT,
    deployment_name,
)

__all__ = ["GATEWAY_API", "HTTP_ROUTE", "accepted", "http_route"]

GATEWAY_API = "gateway.networking.k8s.io/v1"
HTTP_ROUTE = "HTTPRoute"


def _parent(mdep: ModelDeployment) -> dict[str, Any]:
    return {"group": "", "kind": "Service", "name": mdep.name, "port": SERVICE_PORT}


def http_route(mdep: ModelDeployment, weights: Mapping[int, int]) -> dict[str, Any]:
    """The HTTPRoute sending `weights` percent of `mdep`'s requests to each version's Service."""
    backends = [
        {
            "group": "",
            "kind": "Service",
            "name": deployment_name(mdep.name, version),
            "port": SERVICE_PORT,
            "weight": weight,
        }
        for version, weight in sorted(weights.items())
    ]
    return {
        "apiVersion": GATEWAY_API,
        "kind": HTTP_ROUTE,
        "metadata": {
            "name": mdep.name,
            "namespace": mdep.namespace,
            "labels": labels(
                mdep.spec.model_name, component=SERVER_COMPONENT, deployment=mdep.name
            ),
            "ownerReferences": [owner_reference(mdep)],
        },
        "spec": {"parentRefs": [_parent(mdep)], "rules": [{"backendRefs": backends}]},
    }


def accepted(route: Mapping[str, Any], mdep: ModelDeployment) -> bool:
    """Whether an implementation accepted the route for the ModelDeployment's Service."""
    for parent in (route.get("status") or {}).get("parents") or []:
        ref = parent.get("parentRef") or {}
        if ref.get("kind") != "Service" or ref.get("name") != mdep.name:
            continue
        for condition in parent.get("conditions") or []:
            if condition.get("type") == "Accepted" and condition.get("status") == "True":
                return True
    return False
