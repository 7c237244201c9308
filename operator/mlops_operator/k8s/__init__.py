"""The only package that talks to the Kubernetes API (import-linter enforces it).

`KubeClient` makes every call, the operator's and the CLI's; `errors` holds what the API
server's refusals become; `kubeconfig` finds the server and the credentials as kubectl does
(the one loader: the operator's, the CLI's and the console's), `execcredential` runs exec
credential plugins, and `connection` keeps the credentials of each request fresh. Why a thin aiohttp client
rather than a client library is in `mlops_operator.k8s.client` and docs/operator.md.
"""

from mlops_operator.k8s.client import FIELD_MANAGER, KubeClient, ResourceType
from mlops_operator.k8s.connection import Connection
from mlops_operator.k8s.errors import ApiError, Conflict, NotFound, Unauthorized

__all__ = [
    "FIELD_MANAGER",
    "ApiError",
    "Conflict",
    "Connection",
    "KubeClient",
    "NotFound",
    "ResourceType",
    "Unauthorized",
]
