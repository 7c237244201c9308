"""A ModelDeployment's HTTPRoute, where the cluster serves the Gateway API (`resources.routing`).

Whether the API is served is looked up once a minute (`OperatorContext.apis`), so a
cluster without it costs one discovery request a minute, and the Gateway API CRDs
installed (or removed) later are noticed within that minute. A route the operator
may not write (RBAC without ``httproutes``) is reported in the log and treated as
absent: the champion's servers then split the requests themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from mlops_operator.api.modeldeployment import ModelDeployment
from mlops_operator.handlers import children
from mlops_operator.handlers.context import OperatorContext
from mlops_operator.k8s import ApiError, NotFound
from mlops_operator.resources.routing import GATEWAY_API, HTTP_ROUTE, accepted, http_route

__all__ = ["route_traffic"]

logger = logging.getLogger(__name__)


async def _served(context: OperatorContext) -> bool:
    known = context.apis.get(GATEWAY_API)
    if known is not None:
        return known
    try:
        await context.kube.resource_type(GATEWAY_API, HTTP_ROUTE)
    except NotFound:
        context.apis.put(GATEWAY_API, False)
        return False
    context.apis.put(GATEWAY_API, True)
    return True


async def route_traffic(
    context: OperatorContext, mdep: ModelDeployment, weights: Mapping[int, int], *, split: bool
) -> tuple[bool, str | None]:
    """Keep `mdep`'s HTTPRoute at `weights`; whether a mesh applies them, and a name conflict.

    `split`: whether the weights split requests now (a canary), the only time the
    route's acceptance is read. A route of that name that `mdep` does not control is left
    alone and never read as applying the weights (the conflict says why).
    """
    if not weights or not await _served(context):
        return False, None
    try:
        conflict = await children.apply(context, http_route(mdep, weights), exists=True)
        if conflict is not None or not split:
            return False, conflict
        route = await context.kube.get(GATEWAY_API, HTTP_ROUTE, mdep.name, mdep.namespace)
    except ApiError as error:
        logger.warning(
            "HTTPRoute %s/%s not written (%s); the champion's servers split the traffic",
            mdep.namespace,
            mdep.name,
            error,
        )
        context.apis.put(GATEWAY_API, False)
        return False, None
    return accepted(route, mdep), None
