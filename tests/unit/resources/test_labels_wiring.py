"""The label path's wiring: servers, key Secret, evaluator; and where a TrainingJob reads a log.

Aspects: with ``spec.feedback`` every server gets the deployment's label folder (mounted
writable on its own; the store stays read-only), the retention and the key from the Secret
(never a value in the manifest); without it none of that; the Secret holds random key bytes and is owned by the
ModelDeployment; the evaluator pod reads the store read-only, runs the evaluator
with the feedback settings and is scraped; a ModelDeployment whose
``payloadLogging.uri`` moved its log gives the trainer that place to read.
"""

from __future__ import annotations

import base64
from typing import Any

from mlops_operator.api.modeldeployment import ModelDeployment
from mlops_operator.api.trainingjob import TrainingJob
from mlops_operator.evaluator.settings import EvaluatorSettings
from mlops_operator.resources.common import ArtifactStorage
from mlops_operator.resources.labels import (
    evaluator_deployment,
    labels_key_secret,
    labels_root,
)
from mlops_operator.resources.modeldeployment import serving_deployment
from mlops_operator.resources.trainingjob import build_job
from mlops_operator.trainer.payloadlog_uri import parse_payload_log_uri

STORAGE = ArtifactStorage(claim="mlops-artifacts")
FEEDBACK = {"retention": "48h", "window": "30m", "minLabelCoverage": 0.9, "maxLabelDelay": "6h"}


def _mdep(**spec: Any) -> ModelDeployment:
    return ModelDeployment.model_validate(
        {"apiVersion": "mlops.dev/v1alpha1", "kind": "ModelDeployment",
         "metadata": {"name": "iris-live", "namespace": "team", "uid": "u"},
         "spec": {"modelName": "iris", **spec}}
    )  # fmt: skip


def _server(mdep: ModelDeployment) -> dict[str, Any]:
    deployment = serving_deployment(
        mdep, version=2, model_version="iris-v2", artifact_uri="pvc://mlops-artifacts/m/k",
        artifact_sha256="ab" * 32, replicas=1, traffic=True, image="mlops-operator/server:1",
        storage=STORAGE,
    )  # fmt: skip
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def _store_mount(container: dict[str, Any]) -> dict[str, Any]:
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == "/var/lib/mlops/artifacts"]
    return mount


def test_feedback_gives_every_server_the_labels_root_the_retention_and_the_secret_key() -> None:
    container = _server(_mdep(feedback=FEEDBACK))
    env = {e["name"]: e for e in container["env"]}
    # The deployment's label folder of the claim, mounted writable on its own; the store
    # itself stays read-only (a server must never be able to replace a model).
    assert env["MLOPS_LABELS_URI"]["value"] == "file:///var/lib/mlops/labels"
    [labels] = [m for m in container["volumeMounts"] if m["mountPath"] == "/var/lib/mlops/labels"]
    assert labels == {
        "name": "artifacts",
        "mountPath": "/var/lib/mlops/labels",
        "subPath": "labels/team/iris-live",
        "readOnly": False,
    }
    assert env["MLOPS_LABEL_RETENTION_SECONDS"]["value"] == "172800.0"
    assert env["MLOPS_LABELS_KEY"] == {
        "name": "MLOPS_LABELS_KEY",
        "valueFrom": {"secretKeyRef": {"name": "iris-live-labels-key-u", "key": "key"}},
    }
    assert _store_mount(container)["readOnly"] is True


def test_without_feedback_no_label_path_and_a_read_only_store() -> None:
    container = _server(_mdep())
    names = {e["name"] for e in container["env"]}
    assert not names & {"MLOPS_LABELS_URI", "MLOPS_LABELS_KEY", "MLOPS_LABEL_RETENTION_SECONDS"}
    assert _store_mount(container)["readOnly"] is True


def test_the_key_secret_is_random_bytes_owned_by_the_deployment() -> None:
    secret = labels_key_secret(_mdep(feedback=FEEDBACK), b"\x01" * 32)
    assert base64.b64decode(secret["data"]["key"]) == (b"\x01" * 32).hex().encode()
    # Named after the deployment's uid too: a namesake's Secret is never taken for its own.
    assert secret["metadata"]["name"] == "iris-live-labels-key-u"
    [owner] = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("ModelDeployment", "u", True)


def test_the_evaluator_reads_the_store_and_is_scraped() -> None:
    deployment = evaluator_deployment(_mdep(feedback=FEEDBACK), image="img", storage=STORAGE)
    pod = deployment["spec"]["template"]
    [container] = pod["spec"]["containers"]
    assert container["command"] == ["python", "-m", "mlops_operator.evaluator"]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    settings = EvaluatorSettings.model_validate(
        {k.removeprefix("MLOPS_").lower(): v for k, v in env.items() if k != "MLOPS_STORE_URI"}
    )
    assert settings.labels_uri == labels_root(STORAGE, "team", "iris-live")
    assert (settings.window_seconds, settings.min_label_coverage) == (1800, 0.9)
    assert (settings.max_label_delay_seconds, settings.retention_seconds) == (21600, 172800)
    assert _store_mount(container)["readOnly"] is True
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert pod["metadata"]["labels"]["mlops.dev/deployment"] == "iris-live"
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "evaluator"


def test_on_an_object_store_the_evaluator_gets_its_credentials() -> None:
    # Without the Secret the evaluator lists nothing in the bucket and judges no window.
    s3 = ArtifactStorage(claim="unused", uri="s3://bucket/prefix/", credentials_secret="store")
    deployment = evaluator_deployment(_mdep(feedback=FEEDBACK), image="img", storage=s3)
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": "store"}}]
    assert (
        "envFrom"
        not in evaluator_deployment(_mdep(feedback=FEEDBACK), image="img", storage=STORAGE)["spec"][
            "template"
        ]["spec"]["containers"][0]
    )


def test_a_payload_log_moved_by_its_deployment_is_read_where_it_went() -> None:
    training = TrainingJob.model_validate({
        "metadata": {"name": "retrain", "namespace": "team", "uid": "u"},
        "spec": {"modelName": "iris", "target": "target",
                 "estimator": {"name": "LogisticRegression"},
                 "dataset": {"fromPayloadLog": {"deployment": "iris-live", "window": "1h"}}},
    })  # fmt: skip

    def dataset_uri(logs: dict[str, str]) -> str:
        job = build_job(training, STORAGE, "img", logs)
        [container] = job["spec"]["template"]["spec"]["containers"]
        return next(e["value"] for e in container["env"] if e["name"] == "MLOPS_DATASET_URI")

    moved = parse_payload_log_uri(dataset_uri({"iris-live": "s3://logs/iris"}))
    assert moved.root == "s3://logs/iris"
    default = parse_payload_log_uri(dataset_uri({}))
    assert default.root == "file:///var/lib/mlops/artifacts/payload-logs/team/iris-live"


def test_the_evaluator_reads_nothing_older_than_its_deployment() -> None:
    mdep = _mdep(feedback=FEEDBACK)
    mdep.metadata["creationTimestamp"] = "2027-01-15T08:00:00Z"
    deployment = evaluator_deployment(mdep, image="img", storage=STORAGE)
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    # A namesake deleted and created again writes to the same folder: only this one's rows count.
    assert float(env["MLOPS_NOT_BEFORE"]) == 1_800_000_000.0
