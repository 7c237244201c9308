"""How the Job watch writes a TrainingJob's status from the watch's copy, on the real API server.

The copy (Kopf's index) may lag the API server. A copy that already shows the
status to write must not be believed: the stored object is read and the status
written when it differs. A copy whose write is due but whose resourceVersion is
old gets a conflict and the write is made from a fresh read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mlops_operator.api.resource import API_VERSION
from mlops_operator.handlers.trainingjob import _record
from mlops_operator.k8s import KubeClient
from tests.integration.operator.conftest import operator_client
from tests.integration.trainingjob.conftest import training_job


@pytest.fixture
async def kube(kubeconfig: Path, crds: list[Path]) -> AsyncIterator[KubeClient]:
    """The operator's client, logged in the way the operator logs in."""
    async with operator_client(kubeconfig) as client:
        yield client


def _phase(phase: str) -> Any:
    return lambda _current: {"phase": phase}


async def _stored_phase(kube: KubeClient, namespace: str) -> str | None:
    stored = await kube.get(API_VERSION, "TrainingJob", "t", namespace)
    return (stored.get("status") or {}).get("phase")


async def test_a_copy_showing_the_status_already_is_checked_against_the_stored_object(
    kube: KubeClient, namespace: str
) -> None:
    created = await kube.create(training_job(namespace, "t", suspend=True))
    uid = created["metadata"]["uid"]
    lagging = created | {"status": {"phase": "Running"}}
    await _record(kube, namespace, "t", uid, _phase("Running"), current=lagging, cached=True)
    assert await _stored_phase(kube, namespace) == "Running", "a lagging copy was believed"


async def test_a_stale_copy_whose_write_is_due_writes_from_a_fresh_read(
    kube: KubeClient, namespace: str
) -> None:
    created = await kube.create(training_job(namespace, "t", suspend=True))
    uid = created["metadata"]["uid"]
    await _record(kube, namespace, "t", uid, _phase("Running"))
    written = await _record(
        kube, namespace, "t", uid, _phase("Pending"), current=created, cached=True
    )
    assert written is not None
    before, after = written
    assert before["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
    assert after["status"]["phase"] == "Pending"
    assert await _stored_phase(kube, namespace) == "Pending"
