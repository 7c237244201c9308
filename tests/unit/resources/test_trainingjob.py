"""The TrainingJob's builders: the trainer Job, its outcome, the status and the ModelVersion.

Aspects: the Job is named after the TrainingJob, owned by it, restricted, and
its environment reads back as the trainer settings the spec implies; datasets
on a claim are mounted read-only; credentials come from the Secret; specs the
trainer cannot run are refused with a sentence; the Job's states map to phases
and reasons, reading the trainer's termination message; the status keeps its
transition times; the ModelVersion carries the artifact, signature, metrics
and full lineage, is not owned, and names its TrainingJob.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_operator.api.conditions import Reason
from mlops_operator.api.modelversion import ModelVersionSpec
from mlops_operator.api.trainingjob import TrainingJob, TrainingJobPhase
from mlops_operator.resources.common import ArtifactStorage
from mlops_operator.resources.trainingjob import (
    Outcome,
    build_job,
    build_model_version,
    observe_job,
    owner_uid,
    primary_metric,
    trainer_settings,
    training_status,
)
from mlops_operator.trainer.result import (
    SignatureDigest,
    TrainingFailed,
    TrainingSucceeded,
    render_termination_message,
)
from mlops_operator.trainer.settings import TrainerSettings

EXAMPLE = (
    Path(__file__).resolve().parents[3] / "manifests" / "examples" / "iris" / "trainingjob.yaml"
)
STORAGE = ArtifactStorage(claim="mlops-artifacts")
IMAGE = "mlops-operator/trainer:test"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _training(**spec: Any) -> TrainingJob:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"] |= {"namespace": "ml", "uid": "uid-1", "generation": 1}
    doc["spec"] |= spec
    return TrainingJob.model_validate(doc)


def _result(**changes: Any) -> TrainingSucceeded:
    values: dict[str, Any] = {
        "model_name": "iris",
        "model_uri": "file:///var/lib/mlops/artifacts/models/iris/" + "a" * 64,
        "model_key": "models/iris/" + "a" * 64,
        "sha256": "a" * 64,
        "size_bytes": 631,
        "opset": 17,
        "dataset_sha256": "b" * 64,
        "dataset_rows": 150,
        "dataset_columns": 5,
        "metrics": {"accuracy": 0.95, "f1_macro": 0.94},
        "code_version": "0.1.0",
        "libraries": {"scikit-learn": "1.7.2"},
        "signature": SignatureDigest(
            task="classification",
            features=["a", "b"],
            classes=["0", "1", "2"],
            inputs=[("input", "float32", [-1, 2])],
            outputs=[("label", "int64", [-1]), ("probabilities", "float32", [-1, 3])],
        ),
    }
    return TrainingSucceeded(**(values | changes))


def _container(job: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = job["spec"]["template"]["spec"]["containers"][0]
    return container


def _settings_from_env(job: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> TrainerSettings:
    for entry in _container(job)["env"]:
        monkeypatch.setenv(entry["name"], entry["value"])
    return TrainerSettings()  # type: ignore[call-arg]


def test_the_job_is_named_after_and_owned_by_the_training_job() -> None:
    job = build_job(_training(), STORAGE, IMAGE)
    # The uid's start tells this TrainingJob's Job from an earlier namesake's.
    assert job["metadata"]["name"] == "iris-initial-uid1"
    assert job["metadata"]["namespace"] == "ml"
    assert owner_uid(job) == "uid-1"
    assert job["metadata"]["labels"]["mlops.dev/training-job"] == "iris-initial"
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "trainer"
    assert job["spec"]["template"]["metadata"]["labels"] == job["metadata"]["labels"]


def test_the_job_runs_a_restricted_pod_with_scratch_and_artifacts() -> None:
    pod = build_job(_training(), STORAGE, IMAGE)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert {m["mountPath"] for m in container["volumeMounts"]} == {
        "/tmp",
        "/var/lib/mlops/artifacts",
    }
    assert pod["restartPolicy"] == "Never"
    assert container["image"] == IMAGE


def test_the_job_carries_retries_deadline_suspend_and_no_ttl_yet() -> None:
    training = _training(activeDeadlineSeconds=600, backoffLimit=3, suspend=True)
    spec = build_job(training, STORAGE, IMAGE)["spec"]
    assert spec["backoffLimit"] == 3
    assert spec["activeDeadlineSeconds"] == 600
    assert spec["suspend"] is True
    assert "ttlSecondsAfterFinished" not in spec
    rule = spec["podFailurePolicy"]["rules"][0]
    assert rule["action"] == "FailJob"
    assert rule["onExitCodes"]["values"] == [1]


def test_the_environment_reads_back_as_the_settings_the_spec_implies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    training = _training(
        features=["sepal length (cm)", "petal width (cm)"], cvFolds=3, resources=None
    )
    job = build_job(training, STORAGE, IMAGE)
    settings = _settings_from_env(job, monkeypatch)
    assert settings == trainer_settings(training, STORAGE, IMAGE)
    assert settings.dataset_uri == "sklearn://iris"
    assert settings.params == {"max_iter": 500}
    assert (settings.seed, settings.test_size, settings.cv_folds) == (42, 0.3, 3)
    assert settings.features == ["sepal length (cm)", "petal width (cm)"]
    assert settings.store_uri == "file:///var/lib/mlops/artifacts"
    assert settings.training_job == "ml/iris-initial"
    assert settings.image == IMAGE


def test_resources_are_copied_to_the_container() -> None:
    training = _training(resources={"requests": {"cpu": "500m"}, "limits": {"memory": "1Gi"}})
    container = _container(build_job(training, STORAGE, IMAGE))
    assert container["resources"] == {"requests": {"cpu": "500m"}, "limits": {"memory": "1Gi"}}


def test_a_dataset_on_a_claim_is_mounted_read_only() -> None:
    training = _training(dataset={"pvc": {"claimName": "data", "path": "iris/train.csv"}})
    job = build_job(training, STORAGE, IMAGE)
    pod = job["spec"]["template"]["spec"]
    assert {
        "name": "dataset",
        "persistentVolumeClaim": {"claimName": "data", "readOnly": True},
    } in (pod["volumes"])
    env = {e["name"]: e["value"] for e in _container(job)["env"]}
    assert env["MLOPS_DATASET_URI"] == "file:///var/lib/mlops/datasets/data/iris/train.csv"


def test_credentials_come_from_the_named_secret() -> None:
    training = _training(dataset={"uri": "s3://bucket/iris.csv", "credentialsSecret": "reader"})
    assert _container(build_job(training, STORAGE, IMAGE))["envFrom"] == [
        {"secretRef": {"name": "reader"}}
    ]


def test_an_object_store_needs_no_volume() -> None:
    storage = ArtifactStorage(uri="s3://bucket/mlops")
    pod = build_job(_training(), storage, IMAGE)["spec"]["template"]["spec"]
    assert [v["name"] for v in pod["volumes"]] == ["scratch"]


@pytest.mark.parametrize(
    ("preprocessing", "expected"),
    [
        (
            {},
            {"SCALING": "auto", "IMPUTATION": "median", "CATEGORICAL_IMPUTATION": "most_frequent"},
        ),
        ({"scaleNumeric": True}, {"SCALING": "standard"}),
        ({"scaleNumeric": False}, {"SCALING": "none"}),
        ({"impute": {"numeric": "most_frequent"}}, {"IMPUTATION": "most_frequent"}),
        ({"impute": {"numeric": "mean"}}, {"IMPUTATION": "mean"}),
        ({"impute": {"categorical": "constant"}}, {"CATEGORICAL_IMPUTATION": "constant"}),
    ],
)
def test_preprocessing_reaches_the_trainer(
    preprocessing: dict[str, Any], expected: dict[str, str]
) -> None:
    job = build_job(_training(preprocessing=preprocessing), STORAGE, IMAGE)
    env = {e["name"]: e["value"] for e in _container(job)["env"]}
    assert {k: env[f"MLOPS_{k}"] for k in expected} == expected


def test_a_true_scale_numeric_stored_by_the_old_default_leaves_trees_unscaled() -> None:
    # Admission refuses it now; objects stored while the CRD defaulted it to true still carry it.
    training = _training(
        estimator={"name": "RandomForestClassifier"}, preprocessing={"scaleNumeric": True}
    )
    env = {e["name"]: e["value"] for e in _container(build_job(training, STORAGE, IMAGE))["env"]}
    assert env["MLOPS_SCALING"] == "auto"


def test_without_categorical_features_the_trainer_picks_the_non_numeric_columns() -> None:
    env = {e["name"] for e in _container(build_job(_training(), STORAGE, IMAGE))["env"]}
    assert "MLOPS_CATEGORICAL" not in env  # absent: the trainer's default, the text columns
    given = build_job(_training(categoricalFeatures=["a"], features=["a", "b"]), STORAGE, IMAGE)
    env_given = {e["name"]: e["value"] for e in _container(given)["env"]}
    assert env_given["MLOPS_CATEGORICAL"] == '["a"]'


def _job(status: dict[str, Any], *, suspend: bool = False) -> dict[str, Any]:
    return {
        "metadata": {"name": "iris-initial"},
        "spec": {"suspend": suspend, "activeDeadlineSeconds": 60},
        "status": status,
    }


def _pod(exit_code: int, message: str, finished: str = "2026-11-26T12:00:05Z") -> dict[str, Any]:
    terminated = {"exitCode": exit_code, "message": message, "finishedAt": finished}
    return {
        "status": {"containerStatuses": [{"name": "trainer", "state": {"terminated": terminated}}]}
    }


def _condition(type_: str, reason: str = "", message: str = "") -> dict[str, Any]:
    return {
        "type": type_,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-11-26T12:00:06Z",
    }


def test_a_new_job_is_pending_and_a_ready_one_running() -> None:
    assert observe_job(_job({})).phase is TrainingJobPhase.PENDING
    running = observe_job(_job({"startTime": "2026-11-26T12:00:00Z", "active": 1, "ready": 1}))
    assert (running.phase, running.reason) == (TrainingJobPhase.RUNNING, Reason.JOB_RUNNING)
    assert running.started == datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_a_suspended_job_is_pending_and_says_so() -> None:
    outcome = observe_job(_job({}, suspend=True))
    assert (outcome.phase, outcome.reason, outcome.suspended) == (
        TrainingJobPhase.PENDING,
        Reason.SUSPENDED,
        True,
    )


def test_a_complete_job_yields_the_trainers_result() -> None:
    result = _result()
    job = _job({"conditions": [_condition("Complete")], "completionTime": "2026-11-26T12:00:06Z"})
    outcome = observe_job(job, [_pod(0, render_termination_message(result))])
    assert (outcome.phase, outcome.reason) == (TrainingJobPhase.SUCCEEDED, Reason.TRAINED)
    assert outcome.result == result
    assert outcome.finished == datetime(2026, 11, 26, 12, 0, 6, tzinfo=UTC)


def test_a_complete_job_without_a_result_is_a_failure() -> None:
    outcome = observe_job(_job({"conditions": [_condition("Complete")]}), [_pod(0, "")])
    assert outcome.phase is TrainingJobPhase.FAILED
    assert "left no usable result" in outcome.message


@pytest.mark.parametrize(
    ("trainer_reason", "reason"),
    [
        ("InvalidParameter", Reason.TRAINING_FAILED),
        ("DatasetNotFound", Reason.DATASET_UNAVAILABLE),
        ("StorageFailed", Reason.STORAGE_FAILED),
    ],
)
def test_a_failed_job_carries_the_trainers_sentence(trainer_reason: str, reason: Reason) -> None:
    failed = TrainingFailed(
        reason=trainer_reason, message="LogisticRegression has no parameter 'x'"
    )
    pods = [
        _pod(1, render_termination_message(failed), "2026-11-26T12:00:09Z"),
        _pod(1, "an older attempt", "2026-11-26T12:00:01Z"),
    ]
    outcome = observe_job(_job({"conditions": [_condition("Failed", "PodFailurePolicy")]}), pods)
    assert (outcome.phase, outcome.reason) == (TrainingJobPhase.FAILED, reason)
    assert outcome.message == "LogisticRegression has no parameter 'x'"


def test_a_crash_without_a_result_reports_the_log_tail() -> None:
    job = _job({"conditions": [_condition("Failed", "BackoffLimitExceeded")]})
    outcome = observe_job(job, [_pod(137, "Traceback ...\nMemoryError")])
    assert outcome.message == "the trainer exited with code 137: Traceback ...\nMemoryError"


def test_a_silent_kill_reports_the_exit_code() -> None:
    job = _job({"conditions": [_condition("Failed", "BackoffLimitExceeded", "backoff limit")]})
    outcome = observe_job(job, [_pod(137, "")])
    assert outcome.message == (
        "the trainer Job failed (backoff limit) and no pod left a message; the last trainer"
        " exited with code 137 (SIGKILL: out of memory, or the process was killed)"
    )


def test_a_deadline_names_the_limit() -> None:
    outcome = observe_job(_job({"conditions": [_condition("Failed", "DeadlineExceeded")]}), [])
    assert outcome.reason is Reason.DEADLINE_EXCEEDED
    assert "activeDeadlineSeconds (60 s)" in outcome.message


def test_the_status_of_a_success_names_the_version_and_the_metrics() -> None:
    outcome = Outcome(TrainingJobPhase.SUCCEEDED, Reason.TRAINED, "", NOW, NOW, result=_result())
    status = training_status(
        _training(),
        None,
        outcome,
        job_name="iris-initial",
        generation=1,
        model_version="iris-v4",
        now=NOW,
    )
    assert status["phase"] == "Succeeded"
    assert status["modelVersion"] == "iris-v4"
    assert status["metrics"] == {"accuracy": 0.95, "f1_macro": 0.94}
    assert status["datasetSha256"] == "b" * 64
    assert status["observedGeneration"] == 1
    succeeded = next(c for c in status["conditions"] if c["type"] == "Succeeded")
    assert (succeeded["status"], succeeded["reason"]) == ("True", "Trained")
    assert succeeded["message"] == "trained iris-v4: accuracy=0.95, f1_macro=0.94"


def test_a_condition_keeps_its_transition_time_while_its_status_holds() -> None:
    pending = Outcome(TrainingJobPhase.PENDING, Reason.PENDING, "starting")
    first = training_status(_training(), None, pending, job_name="j", generation=1, now=NOW)
    later = datetime(2026, 11, 26, 12, 5, tzinfo=UTC)
    running = Outcome(TrainingJobPhase.RUNNING, Reason.JOB_RUNNING, "running")
    second = training_status(_training(), first, running, job_name="j", generation=1, now=later)
    times = {c["type"]: c["lastTransitionTime"] for c in second["conditions"]}
    assert times["Succeeded"] == "2026-11-26T12:00:00Z"  # Unknown all along
    assert times["Running"] == "2026-11-26T12:05:00Z"  # False -> True


def test_the_model_version_records_artifact_signature_metrics_and_lineage() -> None:
    training = _training(cvFolds=3)
    version = build_model_version(
        training, _result(), name="iris-v2", version=2, storage=STORAGE, image=IMAGE
    )
    assert version["metadata"]["name"] == "iris-v2"
    assert "ownerReferences" not in version["metadata"]
    assert version["metadata"]["annotations"] == {"mlops.dev/training-job-uid": "uid-1"}
    assert version["metadata"]["labels"]["mlops.dev/training-job"] == "iris-initial"
    spec = ModelVersionSpec.model_validate(version["spec"])
    assert spec.artifact.uri == "pvc://mlops-artifacts/models/iris/" + "a" * 64
    assert spec.primary_metric.name == "accuracy"
    assert spec.signature is not None
    assert [f.name for f in spec.signature.features] == ["a", "b"]
    assert spec.lineage is not None
    assert spec.lineage.training_job == "iris-initial"
    assert spec.lineage.dataset.uri == "sklearn://iris"
    assert (spec.lineage.seed, spec.lineage.test_size, spec.lineage.cv_folds) == (42, 0.3, 3)
    assert spec.lineage.params == {"max_iter": 500}
    assert spec.lineage.image == IMAGE
    assert spec.target_deployment == "iris"
    assert spec.gates == training.spec.gates
    assert spec.lineage.parent_version is None  # trained from scratch


def test_a_retrained_version_records_its_parent() -> None:
    training = _training(parentVersion="iris-v1")
    version = build_model_version(
        training, _result(), name="iris-v2", version=2, storage=STORAGE, image=IMAGE
    )
    assert version["spec"]["lineage"]["parentVersion"] == "iris-v1"


def test_a_version_without_a_stored_model_is_refused() -> None:
    with pytest.raises(ValueError, match="no model_key"):
        build_model_version(
            _training(),
            _result(model_key=None),
            name="iris-v1",
            version=1,
            storage=STORAGE,
            image=IMAGE,
        )


def test_the_primary_metric_follows_the_champion_comparison() -> None:
    training = _training(
        gates={"compareToChampion": {"metric": "f1_macro", "maxRegression": {"absolute": 0.01}}}
    )
    assert primary_metric({"accuracy": 0.9, "f1_macro": 0.8}, training) == "f1_macro"
    assert primary_metric({"accuracy": 0.9, "f1_macro": 0.8}, _training()) == "accuracy"
    assert primary_metric({"roc_auc": 0.9, "log_loss": 0.1}, _training()) == "log_loss"
    with pytest.raises(ValueError, match="no metrics"):
        primary_metric({}, _training())


def test_builders_do_not_change_their_input() -> None:
    training = _training()
    before = copy.deepcopy(training.model_dump())
    build_job(training, STORAGE, IMAGE)
    build_model_version(
        training, _result(), name="iris-v1", version=1, storage=STORAGE, image=IMAGE
    )
    assert training.model_dump() == before
