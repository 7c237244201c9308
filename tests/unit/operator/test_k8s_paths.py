"""The k8s client's pure parts: URL paths and what refusals become.

Aspects: core and group paths, namespaced and cluster-scoped, collections across
namespaces, names escaped; a namespaced object without a namespace is refused;
Status bodies become NotFound / Conflict / ApiError with reason, message,
retryability and Retry-After.
"""

from __future__ import annotations

import pytest

from mlops_operator.k8s import ApiError, Conflict, NotFound, ResourceType
from mlops_operator.k8s.errors import error_from

CONFIGMAPS = ResourceType("v1", "ConfigMap", "configmaps", namespaced=True)
JOBS = ResourceType("batch/v1", "Job", "jobs", namespaced=True)
NODES = ResourceType("v1", "Node", "nodes", namespaced=False)


@pytest.mark.parametrize(
    ("rtype", "namespace", "name", "path"),
    [
        (CONFIGMAPS, "ns", "a", "/api/v1/namespaces/ns/configmaps/a"),
        (CONFIGMAPS, "ns", None, "/api/v1/namespaces/ns/configmaps"),
        (CONFIGMAPS, None, None, "/api/v1/configmaps"),
        (JOBS, "ns", "train-1", "/apis/batch/v1/namespaces/ns/jobs/train-1"),
        (NODES, None, "n1", "/api/v1/nodes/n1"),
        (NODES, "ignored", "n1", "/api/v1/nodes/n1"),
        (CONFIGMAPS, "ns", "a/b", "/api/v1/namespaces/ns/configmaps/a%2Fb"),
    ],
)
def test_paths(rtype: ResourceType, namespace: str | None, name: str | None, path: str) -> None:
    assert rtype.path(namespace, name) == path


def test_a_namespaced_object_needs_its_namespace() -> None:
    with pytest.raises(ValueError, match="Job 'train-1' is namespaced"):
        JOBS.path(None, "train-1")


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [(404, NotFound, False), (409, Conflict, True), (422, ApiError, False), (429, ApiError, True)],
)
def test_status_bodies_become_exceptions(
    status: int, kind: type[ApiError], retryable: bool
) -> None:
    body = {"kind": "Status", "reason": "Because", "message": "it said so"}
    error = error_from(status, body, retry_after="3")
    assert type(error) is kind
    assert (error.status, error.reason, error.message) == (status, "Because", "it said so")
    assert error.retryable is retryable
    assert error.retry_after == 3.0
    assert str(error) == f"{status} Because: it said so"


def test_a_body_that_is_not_a_status_still_gives_a_message() -> None:
    error = error_from(503, "upstream connect error", retry_after="Wed, 21 Oct 2026 07:28:00 GMT")
    assert (error.reason, error.message, error.retry_after) == (
        "Unknown",
        "upstream connect error",
        None,
    )
    assert error.retryable
