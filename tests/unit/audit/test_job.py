"""The audit Job and the entries it carries.

Aspects: a ModelDeployment's history becomes entries oldest first; a retrain's
entry depends only on recorded fields; the Job's name is deterministic per
newest entry and fits a label; its pod is restricted, mounts the claim
read-write, hands the whole batch to the appender and cleans itself up; with an
object store it mounts nothing and gets the store's credentials Secret; an empty batch
is refused.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mlops_operator.api.driftpolicy import LastRetrain
from mlops_operator.api.modeldeployment import HistoryAction, HistoryEntry
from mlops_operator.audit import log_key
from mlops_operator.audit.sources import deployment_entries, retrain_entry
from mlops_operator.resources.audit import TTL_SECONDS, audit_job, audit_job_name
from mlops_operator.resources.common import ARTIFACT_MOUNT, ArtifactStorage

T0 = datetime(2025, 3, 4, 14, 0, tzinfo=UTC)


def _history() -> list[HistoryEntry]:
    """Newest first, as in status."""
    return [
        HistoryEntry(version=2, time=T0 + timedelta(minutes=5), action=HistoryAction.PROMOTE,
                     reason="Promoted", evidence={"errorRate": 0.0}),
        HistoryEntry(version=1, time=T0, action=HistoryAction.DEPLOY, reason="RolloutStarted"),
    ]  # fmt: skip


def test_history_becomes_entries_oldest_first() -> None:
    entries = deployment_entries("ns", "iris", "u-1", _history())
    assert [(e.action, e.version) for e in entries] == [("Deploy", 1), ("Promote", 2)]
    assert {e.kind for e in entries} == {"ModelDeployment"}
    assert entries[1].evidence == {"errorRate": 0.0}


def test_a_retrain_entry_is_the_same_whatever_the_resulting_version() -> None:
    retrain = LastRetrain(time=T0, reason="featureDrift 0.4 > 0.2", training_job="iris-retrain-1")
    later = retrain.model_copy(update={"resulting_version": "iris-v3"})
    first = retrain_entry("ns", "iris", "u-2", retrain)
    assert first == retrain_entry("ns", "iris", "u-2", later)
    assert (first.action, first.reason, first.message) == (
        "Retrain",
        "RetrainTriggered",
        "featureDrift 0.4 > 0.2",
    )
    assert first.details == {"trainingJob": "iris-retrain-1"}


def _job() -> dict[str, Any]:
    entries = deployment_entries("ns", "iris", "u-1", _history())
    return audit_job(
        entries,
        key=log_key("ns", "modeldeployments", "iris"),
        model="iris",
        image="mlops-operator/trainer:dev",
        storage=ArtifactStorage(claim="mlops-artifacts"),
        deployment="iris",
    )


def test_the_job_is_named_after_the_newest_entry() -> None:
    job = _job()
    newest = deployment_entries("ns", "iris", "u-1", _history())[-1]
    assert job["metadata"]["name"] == f"iris-audit-{newest.id[:10]}"
    assert job["metadata"]["annotations"] == {"mlops.dev/audit-entry": newest.id}
    assert "ownerReferences" not in job["metadata"]


def test_long_names_fit_in_a_label_and_stay_distinct() -> None:
    first, second = (
        audit_job_name("a" * 80 + "x", "0123456789ab"),
        audit_job_name("a" * 80, "0123456789ab"),
    )
    assert len(first) <= 63
    assert len(second) <= 63
    assert first != second
    assert first.endswith("-audit-0123456789")


def test_the_pod_is_restricted_and_appends_the_whole_batch() -> None:
    job = _job()
    spec = job["spec"]
    assert spec["ttlSecondsAfterFinished"] == TTL_SECONDS
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["command"] == [
        "python", "-m", "mlops_operator.audit", "append",
        "--key", "audit/ns/modeldeployments/iris.jsonl",
    ]  # fmt: skip
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["MLOPS_STORE_URI"] == f"file://{ARTIFACT_MOUNT}"
    assert [e["version"] for e in json.loads(env["MLOPS_AUDIT_ENTRIES"])] == [1, 2]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == ARTIFACT_MOUNT]
    assert mount["readOnly"] is False
    assert {"name": "artifacts", "persistentVolumeClaim": {"claimName": "mlops-artifacts"}} in pod[
        "volumes"
    ]


def test_on_an_object_store_the_job_mounts_nothing_and_gets_the_credentials() -> None:
    entries = deployment_entries("ns", "iris", "u-1", _history())
    key = "audit/ns/modeldeployments/iris.jsonl"
    storage = ArtifactStorage(uri="s3://b/r/", credentials_secret="store-credentials")
    job = audit_job(entries, key=key, model="iris", image="i", storage=storage)
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert [v["name"] for v in pod["volumes"]] == ["scratch"]
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/tmp"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MLOPS_STORE_URI"] == "s3://b/r"
    assert container["envFrom"] == [{"secretRef": {"name": "store-credentials"}}]
    # On a PVC there is nothing to authenticate: the Secret is not handed out.
    claim = ArtifactStorage(credentials_secret="store-credentials")
    plain = audit_job(entries, key=key, model="iris", image="i", storage=claim)
    assert "envFrom" not in plain["spec"]["template"]["spec"]["containers"][0]


def test_an_empty_batch_is_refused() -> None:
    key = "audit/ns/modeldeployments/iris.jsonl"
    with pytest.raises(ValueError, match="at least one entry"):
        audit_job([], key=key, model="iris", image="i", storage=ArtifactStorage())
