"""The payload log's wiring: the servers write to the deployment's folder, a TrainingJob reads it.

Aspects: logging on gives the server the folder and the sample rate, mounting only that
folder of the claim writable (the store itself is read-only whatever the settings); a chosen URI is used as given without
writing the store; ``fromPayloadLog`` gives the trainer a ``payloadlog+`` URI for
the same folder with the window, the target and minRows, and the lineage names the
deployment; the retraining builder's job is accepted.
"""

from __future__ import annotations

from typing import Any

from mlops_operator.api.modeldeployment import ModelDeployment
from mlops_operator.api.trainingjob import TrainingJob
from mlops_operator.resources.common import ArtifactStorage
from mlops_operator.resources.modeldeployment import serving_deployment
from mlops_operator.resources.trainingjob import build_job, dataset_lineage_uri
from mlops_operator.trainer.payloadlog_uri import parse_payload_log_uri

STORAGE = ArtifactStorage(claim="mlops-artifacts")


def _server(logging: dict[str, Any] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"modelName": "iris"}
    if logging is not None:
        spec["payloadLogging"] = logging
    mdep = ModelDeployment.model_validate(
        {"apiVersion": "mlops.dev/v1alpha1", "kind": "ModelDeployment",
         "metadata": {"name": "iris-live", "namespace": "team", "uid": "u"}, "spec": spec}
    )  # fmt: skip
    deployment = serving_deployment(
        mdep, version=2, model_version="iris-v2", artifact_uri="pvc://mlops-artifacts/m/k",
        artifact_sha256="ab" * 32, replicas=1, traffic=True, image="mlops-operator/server:1",
        storage=STORAGE,
    )  # fmt: skip
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"]}


def _store_mount(container: dict[str, Any]) -> dict[str, Any]:
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == "/var/lib/mlops/artifacts"]
    return mount


def test_logging_on_writes_the_deployments_folder_only_the_store_stays_read_only() -> None:
    container = _server({"enabled": True, "sampleRate": 0.25})
    env = _env(container)
    assert env["MLOPS_PAYLOAD_LOG_URI"] == "file:///var/lib/mlops/payload-log"
    assert env["MLOPS_PAYLOAD_LOG_SAMPLE_RATE"] == "0.25"
    assert _store_mount(container)["readOnly"] is True
    # The one writable mount: the same claim, only the deployment's folder, where a
    # TrainingJob's fromPayloadLog reads it (payload-logs/<namespace>/<deployment>).
    [log] = [m for m in container["volumeMounts"] if m["mountPath"] == "/var/lib/mlops/payload-log"]
    assert log == {
        "name": "artifacts",
        "mountPath": "/var/lib/mlops/payload-log",
        "subPath": "payload-logs/team/iris-live",
        "readOnly": False,
    }
    writable = [
        m for m in container["volumeMounts"] if m["name"] == "artifacts" and not m["readOnly"]
    ]
    assert writable == [log]


def test_logging_off_or_elsewhere_leaves_the_store_read_only() -> None:
    for logging in (None, {"enabled": False}):
        container = _server(logging)
        assert "MLOPS_PAYLOAD_LOG_URI" not in _env(container)
        assert _store_mount(container)["readOnly"] is True
    elsewhere = _server({"enabled": True, "sampleRate": 1.0, "uri": "s3://logs/iris"})
    assert _env(elsewhere)["MLOPS_PAYLOAD_LOG_URI"] == "s3://logs/iris"
    assert _store_mount(elsewhere)["readOnly"] is True


def test_a_training_job_from_the_payload_log_reads_that_folder() -> None:
    training = TrainingJob.model_validate(
        {"apiVersion": "mlops.dev/v1alpha1", "kind": "TrainingJob",
         "metadata": {"name": "iris-retrain", "namespace": "team", "uid": "u", "generation": 1},
         "spec": {"modelName": "iris", "target": "species",
                  "dataset": {"fromPayloadLog": {"deployment": "iris-live", "window": "2m",
                                                 "minRows": 50}},
                  "estimator": {"name": "LogisticRegression"}}}
    )  # fmt: skip
    job = build_job(training, STORAGE, "mlops-operator/trainer:1")
    container = job["spec"]["template"]["spec"]["containers"][0]
    query = parse_payload_log_uri(_env(container)["MLOPS_DATASET_URI"])
    assert query.root == "file:///var/lib/mlops/artifacts/payload-logs/team/iris-live"
    assert (query.target, query.window_seconds, query.min_rows) == ("species", 120.0, 50)
    assert _store_mount(container)["readOnly"] is False
    assert dataset_lineage_uri(training) == "payloadlog://team/iris-live?window=2m"
