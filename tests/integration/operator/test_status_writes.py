"""The controller kit's status write, on the real API server.

Aspects: a status decided from a copy is written conditional on that copy's
resourceVersion, so one decided from a stale copy is dropped and never
overwrites the newer decision; a status already stored costs no write; a
model status clears the fields it leaves out, a mapping touches only its own;
a status derived from the stored object is retried from a fresh read (a watch's
copy that shows it written already is checked against the stored object; one
whose write is due but whose resourceVersion is old writes from a fresh read);
nothing is written to a namesake created again under the same name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from mlops_operator.api.resource import API_VERSION
from mlops_operator.api.trainingjob import TrainingJobPhase, TrainingJobStatus
from mlops_operator.handlers.kit import write_status
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


async def _stored(kube: KubeClient, namespace: str) -> Mapping[str, Any]:
    return await kube.get(API_VERSION, "TrainingJob", "t", namespace)


async def _stored_phase(kube: KubeClient, namespace: str) -> str | None:
    return ((await _stored(kube, namespace)).get("status") or {}).get("phase")


async def test_a_status_decided_from_a_stale_copy_is_dropped(
    kube: KubeClient, namespace: str
) -> None:
    created = await kube.create(training_job(namespace, "t", suspend=True))
    newer = await write_status(kube, created, {"phase": "Running"})
    assert newer is not None
    assert newer.changed
    assert await write_status(kube, created, {"phase": "Failed"}) is None
    assert await _stored_phase(kube, namespace) == "Running", "a stale decision overwrote"
    again = await write_status(kube, newer.after, {"phase": "Failed"})
    assert again is not None
    assert again.changed
    assert await _stored_phase(kube, namespace) == "Failed"


async def test_a_status_already_stored_costs_no_write(kube: KubeClient, namespace: str) -> None:
    created = await kube.create(training_job(namespace, "t", suspend=True))
    written = await write_status(kube, created, {"phase": "Running"})
    assert written is not None
    unchanged = await write_status(kube, written.after, {"phase": "Running"})
    assert unchanged is not None
    assert not unchanged.changed
    stored = await _stored(kube, namespace)
    assert stored["metadata"]["resourceVersion"] == written.after["metadata"]["resourceVersion"]


async def test_a_model_is_the_whole_status_and_a_mapping_only_its_fields(
    kube: KubeClient, namespace: str
) -> None:
    created = await kube.create(training_job(namespace, "t", suspend=True))
    running = TrainingJobStatus(phase=TrainingJobPhase.RUNNING, job_name="t-train", message="m")
    first = await write_status(kube, created, running)
    assert first is not None
    assert first.after["status"]["jobName"] == "t-train"
    merged = await write_status(kube, first.after, {"message": "n"})
    assert merged is not None
    assert merged.after["status"]["jobName"] == "t-train", "a mapping cleared another field"
    whole = await write_status(kube, merged.after, TrainingJobStatus(phase=TrainingJobPhase.FAILED))
    assert whole is not None
    assert "jobName" not in whole.after["status"], "a field the model left out lingered"
    assert "message" not in whole.after["status"]
    assert whole.after["status"]["phase"] == "Failed"


async def test_a_copy_showing_the_status_already_is_checked_against_the_stored_object(
    kube: KubeClient, namespace: str
) -> None:
    created = await kube.create(training_job(namespace, "t", suspend=True))
    lagging = created | {"status": {"phase": "Running"}}
    await write_status(kube, lagging, _phase("Running"), cached=True)
    assert await _stored_phase(kube, namespace) == "Running", "a lagging copy was believed"


async def test_a_stale_copy_whose_write_is_due_writes_from_a_fresh_read(
    kube: KubeClient, namespace: str
) -> None:
    created = await kube.create(training_job(namespace, "t", suspend=True))
    await write_status(kube, created, _phase("Running"))
    written = await write_status(kube, created, _phase("Pending"), cached=True)
    assert written is not None
    assert written.before["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
    assert written.after["status"]["phase"] == "Pending"
    assert await _stored_phase(kube, namespace) == "Pending"


async def test_nothing_is_written_to_a_namesake(kube: KubeClient, namespace: str) -> None:
    earlier = await kube.create(training_job(namespace, "t", suspend=True))
    await kube.delete(API_VERSION, "TrainingJob", "t", namespace)
    await kube.create(training_job(namespace, "t", suspend=True))
    assert await write_status(kube, earlier, _phase("Failed"), cached=True) is None
    assert await write_status(kube, earlier, {"phase": "Failed"}) is None
    assert await _stored_phase(kube, namespace) is None
