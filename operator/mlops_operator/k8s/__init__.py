"""The only package that talks to the Kubernetes API (import-linter enforces it).

`KubeClient` does the handlers' calls; `errors` holds what the API server's
refusals become. Why a thin aiohttp client rather than a client library is in
`mlops_operator.k8s.client` and docs/operator.md.
"""

from mlops_operator.k8s.client import FIELD_MANAGER, KubeClient, ResourceType
from mlops_operator.k8s.errors import ApiError, Conflict, NotFound

__all__ = ["FIELD_MANAGER", "ApiError", "Conflict", "KubeClient", "NotFound", "ResourceType"]
