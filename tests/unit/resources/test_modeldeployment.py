"""Serving and validation builders: names, traffic labels, the restricted pod, the server's env."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mlops_operator.api.gates import Gates, MetricGate
from mlops_operator.api.metadata import CHAMPIONS_ANNOTATION, GATES_ANNOTATION, TRAFFIC_LABEL
from mlops_operator.api.modeldeployment import ModelDeployment
from mlops_operator.api.modelversion import ModelVersion
from mlops_operator.decisions.gates import merge_gates
from mlops_operator.resources.common import ArtifactStorage
from mlops_operator.resources.modeldeployment import (
    Forwarding,
    artifact_refusal,
    grpc_port,
    service_monitor,
    serving_deployment,
    serving_selector,
    serving_service,
    version_service,
    version_service_url,
)
from mlops_operator.resources.validation import (
    read_report,
    recorded_champions,
    recorded_gates,
    validation_job,
    validation_job_name,
)
from mlops_operator.serving.settings import ServingSettings
from mlops_operator.validator.report import Check, ValidationReport
from mlops_operator.validator.settings import ValidatorSettings

META = {"name": "iris", "namespace": "team", "uid": "u-1"}
SHA = "ab" * 32


def _mdep(**spec: Any) -> ModelDeployment:
    return ModelDeployment.model_validate(
        {"apiVersion": "mlops.dev/v1alpha1", "kind": "ModelDeployment", "metadata": META,
         "spec": {"modelName": "iris"} | spec}
    )  # fmt: skip


def _deployment(traffic: bool = True, grpc: int = 0, **spec: Any) -> dict[str, Any]:
    return serving_deployment(
        _mdep(**spec), version=3, model_version="iris-v3", artifact_uri="pvc://mlops-artifacts/m/k",
        artifact_sha256=SHA, replicas=2, traffic=traffic, image="mlops-operator/server:1",
        storage=ArtifactStorage(), grpc_port=grpc,
    )  # fmt: skip


def _env(deployment: dict[str, Any]) -> dict[str, Any]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_one_deployment_per_version_with_a_deterministic_name() -> None:
    deployment = _deployment()
    assert deployment["metadata"]["name"] == "iris-v3"
    assert deployment["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert deployment["spec"]["replicas"] == 2
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert serving_selector(_mdep(), 3).items() <= selector.items()
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_the_pod_meets_the_restricted_standard() -> None:
    pod = _deployment()["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = pod["containers"][0]
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["readOnlyRootFilesystem"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/var/lib/mlops/artifacts"]["readOnly"] is True
    assert "/tmp" in mounts


def test_the_server_env_renders_its_settings_class(monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(_deployment(server={"maxBatchSize": 32, "workers": 2}))
    assert env["MLOPS_MODEL_DIR"] == "file:///var/lib/mlops/artifacts/m/k"
    assert env["MLOPS_MODEL_VERSION"] == "3"
    assert env["MLOPS_STORE_URI"] == "file:///var/lib/mlops/artifacts"
    for name, value in env.items():
        if name != "MLOPS_STORE_URI":
            monkeypatch.setenv(name, value)
    settings = ServingSettings()  # type: ignore[call-arg]
    assert (settings.model_name, settings.max_batch_rows, settings.workers) == ("iris", 32, 2)
    # The registered digest and where a refusal is reported travel in the pod spec.
    assert settings.expected_sha256 == SHA
    container = _deployment()["spec"]["template"]["spec"]["containers"][0]
    assert str(settings.termination_message_path) == container["terminationMessagePath"]
    assert settings.feedback_token is None
    assert settings.drain_seconds > 0
    # Draining and finishing requests in flight end before the kubelet's SIGKILL.
    grace = _deployment()["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert settings.drain_seconds + settings.shutdown_timeout_seconds < grace


def test_only_the_champions_pods_take_the_services_traffic() -> None:
    served = _deployment(traffic=True)["spec"]["template"]["metadata"]["labels"]
    challenger = _deployment(traffic=False)["spec"]["template"]["metadata"]["labels"]
    main, own = serving_service(_mdep()), version_service(_mdep(), 3)
    assert main["spec"]["selector"].items() <= served.items()
    assert not main["spec"]["selector"].items() <= challenger.items()
    # A version's own Service reaches its pods whatever their traffic label.
    assert own["spec"]["selector"].items() <= challenger.items()
    assert own["metadata"]["name"] == "iris-v3"
    assert served[TRAFFIC_LABEL] == "true"
    annotations = _deployment()["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"


def test_the_champion_is_told_its_shares_and_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    deployment = serving_deployment(
        _mdep(server={"timeoutMs": 250}), version=1, model_version="iris-v1",
        artifact_uri="pvc://mlops-artifacts/m/k", artifact_sha256=SHA, replicas=1, traffic=True,
        image="mlops-operator/server:1", storage=ArtifactStorage(),
        mirror=Forwarding("http://iris-v2.team.svc.cluster.local:80", 25),
        canary=Forwarding("http://iris-v3.team.svc.cluster.local:80", 10),
    )  # fmt: skip
    for name, value in _env(deployment).items():
        if name != "MLOPS_STORE_URI":
            monkeypatch.setenv(name, value)
    settings = ServingSettings()  # type: ignore[call-arg]
    assert (settings.shadow_url, settings.shadow_percent) == (
        "http://iris-v2.team.svc.cluster.local:80", 25,
    )  # fmt: skip
    assert (settings.canary_url, settings.canary_percent) == (
        "http://iris-v3.team.svc.cluster.local:80", 10,
    )  # fmt: skip
    assert settings.timeout_ms == 250
    assert version_service_url(_mdep(), 3) == "http://iris-v3.team.svc.cluster.local:80"


def test_the_grpc_port_reaches_the_server_the_pod_and_the_services(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The ModelDeployment's own port wins over the operator's default; 0 turns gRPC off.
    assert grpc_port(_mdep(server={"grpcPort": 9100}), 9000) == 9100
    assert grpc_port(_mdep(), 9000) == 9000
    assert grpc_port(_mdep(server={"grpcPort": 0}), 9000) == 0
    deployment = _deployment(grpc=9100)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "grpc", "containerPort": 9100, "protocol": "TCP"} in container["ports"]
    monkeypatch.setenv("MLOPS_MODEL_DIR", "/m")
    monkeypatch.setenv("MLOPS_GRPC_PORT", _env(deployment)["MLOPS_GRPC_PORT"])
    assert ServingSettings().grpc_port == 9100  # type: ignore[call-arg]
    for service in (serving_service(_mdep(), 9100), version_service(_mdep(), 3, 9100)):
        ports = {p["name"]: p for p in service["spec"]["ports"]}
        assert ports["grpc"]["port"] == 9100
        assert ports["grpc"]["targetPort"] == "grpc"
        assert ports["grpc"]["appProtocol"] == "kubernetes.io/h2c"
    off = _deployment(grpc=0)
    assert [p["name"] for p in off["spec"]["template"]["spec"]["containers"][0]["ports"]] == [
        "http"
    ]
    assert "MLOPS_GRPC_PORT" not in _env(off)
    assert [p["name"] for p in serving_service(_mdep(), 0)["spec"]["ports"]] == ["http"]


def _mv(name: str = "iris-v2") -> ModelVersion:
    return ModelVersion.model_validate(
        {"apiVersion": "mlops.dev/v1alpha1", "kind": "ModelVersion",
         "metadata": {"name": name, "namespace": "team", "uid": "u-2"},
         "spec": {"modelName": "iris", "version": 2,
                  "artifact": {"uri": "pvc://mlops-artifacts/models/iris/abc", "sha256": "a" * 64,
                               "sizeBytes": 10, "opset": 17},
                  "signature": {"task": "classification",
                                "features": [{"name": "x", "kind": "numeric"}],
                                "classes": ["0", "1"]},
                  "metrics": {"accuracy": 0.9}, "primaryMetric": {"name": "accuracy", "value": 0.9}}}
    )  # fmt: skip


def test_validation_job_carries_the_checks_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    gates = Gates(requireApproval=True, metrics=[MetricGate(metric="accuracy", threshold=0.9)])
    job = validation_job(
        _mv(), image="mlops-operator/trainer:1", storage=ArtifactStorage(), gates=gates,
        champions={"iris-v1": "pvc://mlops-artifacts/models/iris/old"},
    )  # fmt: skip
    assert job["metadata"]["name"] == "iris-v2-validate"
    assert job["metadata"]["annotations"][CHAMPIONS_ANNOTATION] == '["iris-v1"]'
    # What the Job was made for is what it is judged by, whatever changes meanwhile.
    assert recorded_gates(job, None) == gates
    assert recorded_champions(job) == ["iris-v1"]
    del job["metadata"]["annotations"][GATES_ANNOTATION]
    assert recorded_gates(job, _mv().spec.gates) == (_mv().spec.gates or Gates())
    for garbled in ('{"metrics": 1}', "[]", "not json"):
        job["metadata"]["annotations"][GATES_ANNOTATION] = garbled
        with pytest.raises(ValidationError):
            recorded_gates(job, None)
    # Merged gates may exceed what one object may declare; they are read back whole.
    merged = merge_gates(*(Gates(metrics=[MetricGate(metric=f"{p}{i}", threshold=0.5)
                                          for i in range(16)]) for p in "ab"))  # fmt: skip
    job["metadata"]["annotations"][GATES_ANNOTATION] = merged.model_dump_json(
        by_alias=True, exclude_defaults=True
    )
    assert len(recorded_gates(job, None).metrics) == 32
    assert job["spec"]["backoffLimit"] == 0
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "mlops_operator.validator"]
    for entry in container["env"]:
        monkeypatch.setenv(entry["name"], entry["value"])
    settings = ValidatorSettings()  # type: ignore[call-arg]
    assert settings.model_uri == "file:///var/lib/mlops/artifacts/models/iris/abc"
    assert settings.champions == {"iris-v1": "file:///var/lib/mlops/artifacts/models/iris/old"}
    assert settings.expected_classes == ["0", "1"]


def test_long_names_are_shortened_deterministically() -> None:
    long = "m" * 80
    assert len(validation_job_name(long)) <= 63
    assert validation_job_name(long) == validation_job_name(long)
    assert validation_job_name(long) != validation_job_name(long + "x")


def test_the_report_is_read_from_the_termination_message() -> None:
    report = ValidationReport(checks=[Check(name="checksum", passed=True)])
    pod = {"status": {"containerStatuses": [
        {"name": "validator", "state": {"terminated": {"exitCode": 0, "message": report.render()}}}
    ]}}  # fmt: skip
    assert read_report([pod]) == report
    broken = {"status": {"containerStatuses": [
        {"name": "validator", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}
    ]}}  # fmt: skip
    assert "OOMKilled, exit code 137" in str(read_report([broken]))
    assert "without a finished validator pod" in str(read_report([]))


def test_the_service_monitor_interval_is_one_prometheus_reads() -> None:
    mdep = _mdep(monitoring={"serviceMonitor": {"enabled": True, "interval": "1.5m"}})
    assert service_monitor(mdep)["spec"]["endpoints"][0]["interval"] == "90000ms"


def test_the_feedback_token_comes_from_the_secret_never_through_the_operator() -> None:
    env = _env(_deployment(feedback={"tokenSecret": {"name": "labels", "key": "bearer"}}))
    assert env["MLOPS_FEEDBACK_TOKEN"] == {"secretKeyRef": {"name": "labels", "key": "bearer"}}
    assert "MLOPS_FEEDBACK_TOKEN" not in _env(_deployment())


def _pod(state: dict[str, Any], last: dict[str, Any] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"name": "server", "state": state}
    if last is not None:
        status["lastState"] = last
    return {"status": {"containerStatuses": [status]}}


def test_a_refusal_is_read_from_the_servers_termination_message() -> None:
    refused = {"terminated": {"exitCode": 3, "message": "artifact refused: sha256 mismatch"}}
    assert artifact_refusal([_pod(refused)]) == "artifact refused: sha256 mismatch"
    # After a restart the kubelet keeps it as the last state.
    waiting = {"waiting": {"reason": "CrashLoopBackOff"}}
    assert artifact_refusal([_pod(waiting, refused)]) == "artifact refused: sha256 mismatch"
    # Other endings are not refusals: a crash, a clean stop, a pod still running.
    crashed = {"terminated": {"exitCode": 1, "message": "Traceback ..."}}
    assert artifact_refusal([_pod(crashed), _pod({"running": {}}), _pod(waiting, crashed)]) is None
    bare = {"terminated": {"exitCode": 3}}
    assert artifact_refusal([_pod(bare)]) == "the server refused the artifact (no message)"
