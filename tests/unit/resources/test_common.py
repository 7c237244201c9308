"""The shared pieces of every workload: labels, owner references, pod security, the artifact store.

Aspects: label values fit Kubernetes' 63-character limit and stay distinct; an
owner reference needs a uid; the security contexts are the restricted standard's, with the
operator's ids (or none) and the seccomp profile and non-root rule whatever the ids;
the artifact store's volume, environment and URIs in PVC and object-store mode,
and the mapping of a recorded ``pvc://`` URI back to the mount; the one Job template of
the trainer, validator and audit Jobs (its pod restricted down to the container, labelled as
the Job, overrides merged over it, nothing of the caller's dicts changed).
"""

from __future__ import annotations

import re

import pytest

from mlops_operator.api.pods import DEFAULT_WORKLOAD_SECURITY, PodOverrides, WorkloadSecurityContext
from mlops_operator.api.trainingjob import TrainingJob
from mlops_operator.resources.common import (
    ARTIFACT_MOUNT,
    ArtifactStorage,
    artifact_pvc,
    label_value,
    labels,
    owner_reference,
    resolve_artifact_uri,
    restricted_container_security_context,
    restricted_job,
    restricted_pod_security_context,
)

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _training_job(uid: str | None) -> TrainingJob:
    metadata = {"name": "iris-initial", "namespace": "ml"} | ({"uid": uid} if uid else {})
    return TrainingJob.model_validate(
        {
            "apiVersion": "mlops.dev/v1alpha1",
            "kind": "TrainingJob",
            "metadata": metadata,
            "spec": {
                "modelName": "iris",
                "dataset": {"uri": "sklearn://iris"},
                "target": "target",
                "estimator": {"name": "LogisticRegression"},
            },
        }
    )


def test_short_names_are_label_values_as_they_are() -> None:
    assert label_value("iris-initial") == "iris-initial"


def test_long_names_are_cut_to_distinct_valid_label_values() -> None:
    first, second = "a." * 100 + "x", "a." * 100 + "y"
    cut = {label_value(first), label_value(second)}
    assert len(cut) == 2
    for value in cut:
        assert len(value) <= 63
        assert _LABEL_VALUE.match(value), value


def test_labels_name_the_operator_the_model_and_the_parents_given() -> None:
    assert labels("iris", component="trainer", training_job="iris-initial") == {
        "app.kubernetes.io/managed-by": "mlops-operator",
        "app.kubernetes.io/part-of": "mlops-operator",
        "app.kubernetes.io/component": "trainer",
        "mlops.dev/model": "iris",
        "mlops.dev/training-job": "iris-initial",
    }


def test_owner_reference_points_at_the_owner_by_uid() -> None:
    assert owner_reference(_training_job("1234")) == {
        "apiVersion": "mlops.dev/v1alpha1",
        "kind": "TrainingJob",
        "name": "iris-initial",
        "uid": "1234",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_owner_reference_refuses_an_object_never_stored() -> None:
    with pytest.raises(ValueError, match=r"TrainingJob 'iris-initial' has no metadata\.uid"):
        owner_reference(_training_job(None))


def test_security_contexts_meet_the_restricted_standard() -> None:
    pod = restricted_pod_security_context(DEFAULT_WORKLOAD_SECURITY)
    container = restricted_container_security_context()
    assert pod == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "fsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    unset = WorkloadSecurityContext(run_as_user=None, run_as_group=None, fs_group=None)
    assert restricted_pod_security_context(unset) == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert container["readOnlyRootFilesystem"] is True


def test_pvc_storage_mounts_the_claim_and_records_pvc_uris() -> None:
    storage = ArtifactStorage(claim="mlops-artifacts")
    assert storage.env() == [
        {"name": "MLOPS_STORE_URI", "value": "file:///var/lib/mlops/artifacts"}
    ]
    assert storage.volumes() == [
        {"name": "artifacts", "persistentVolumeClaim": {"claimName": "mlops-artifacts"}}
    ]
    assert storage.mounts(read_only=True) == [
        {"name": "artifacts", "mountPath": ARTIFACT_MOUNT, "readOnly": True}
    ]
    assert storage.uri_of("models/iris/abc") == "pvc://mlops-artifacts/models/iris/abc"


def test_object_store_needs_no_volume_and_records_its_own_uris() -> None:
    storage = ArtifactStorage(claim="mlops-artifacts", uri="s3://bucket/prefix/")
    assert storage.env() == [{"name": "MLOPS_STORE_URI", "value": "s3://bucket/prefix"}]
    assert storage.volumes() == []
    assert storage.mounts() == []
    assert storage.uri_of("/models/iris/abc") == "s3://bucket/prefix/models/iris/abc"


def test_storage_needs_a_claim_or_a_uri() -> None:
    with pytest.raises(ValueError, match="PersistentVolumeClaim name or an object-store URI"):
        ArtifactStorage(claim=None, uri=None)


def test_artifact_pvc_uses_the_default_storage_class_unless_named() -> None:
    claim = artifact_pvc("ml", "mlops-artifacts")
    assert claim["metadata"]["namespace"] == "ml"
    assert "storageClassName" not in claim["spec"]
    assert artifact_pvc("ml", "c", storage_class="fast")["spec"]["storageClassName"] == "fast"


@pytest.mark.parametrize(
    ("recorded", "opened"),
    [
        (
            "pvc://mlops-artifacts/models/iris/abc",
            "file:///var/lib/mlops/artifacts/models/iris/abc",
        ),
        ("s3://bucket/models/iris/abc", "s3://bucket/models/iris/abc"),
    ],
)
def test_recorded_uris_resolve_inside_a_pod(recorded: str, opened: str) -> None:
    assert resolve_artifact_uri(recorded) == opened


def test_a_pvc_uri_without_a_key_is_refused() -> None:
    with pytest.raises(ValueError, match=r"expected pvc://<claim>/<key>"):
        resolve_artifact_uri("pvc://mlops-artifacts/")


def test_the_job_template_is_restricted_labelled_as_the_job_and_takes_overrides() -> None:
    metadata = {"name": "j", "namespace": "ml", "labels": {"app": "x"}}
    container = {"name": "work", "image": "img", "securityContext": {"privileged": True}}
    job = restricted_job(
        metadata,
        container,
        [{"name": "tmp", "emptyDir": {}}],
        {"backoffLimit": 0},
        (PodOverrides(node_selector={"pool": "a"}), None),
        security=WorkloadSecurityContext(fs_group=None),
    )
    assert (job["apiVersion"], job["kind"], job["metadata"]) == ("batch/v1", "Job", metadata)
    assert job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]
    assert pod["metadata"]["labels"] == {"app": "x"}
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert pod["spec"]["enableServiceLinks"] is False
    assert pod["spec"]["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    (built,) = pod["spec"]["containers"]
    assert built["securityContext"] == restricted_container_security_context()
    assert pod["spec"]["nodeSelector"] == {"pool": "a"}
    assert container["securityContext"] == {"privileged": True}  # the caller's, untouched
