"""The serving children of a ModelDeployment: one Deployment per served version, one Service.

- **Names are deterministic**: ``<mdep>-v<version>`` for each version's
  Deployment and its Service, ``<mdep>`` for the ModelDeployment's Service.
  Re-applying after a crash converges.
- **Traffic** goes to every ready pod whose ``mlops.dev/traffic`` label is
  ``"true"``: the champion's. A challenger is reached through its own Service:
  the champion's servers mirror a share of the requests to a shadow, or forward
  exactly the canary's weight to a canary (`Forwarding`), so the split does not
  depend on pod counts. When the Gateway API is installed, an HTTPRoute
  (`resources.routing`) carries the same weights for a mesh to apply.
- **Pods** meet the ``restricted`` Pod Security Standard, mount the artifact
  store read-only, are ready when the server's ``/v2/health/ready`` says so,
  drain for a few seconds on SIGTERM so endpoints are gone before the listener
  closes, and carry Prometheus scrape annotations.
- **Payload log**: with ``payloadLogging.enabled`` the servers log their sample
  to ``payloadLogging.uri``, by default to the deployment's folder in the
  artifact store, where a TrainingJob's ``dataset.fromPayloadLog`` finds it. The
  claim stays read-only; only that folder (and, with ``spec.feedback``, the label
  logs' folder) is mounted writable, each at its own path
  (`ArtifactStorage.writable_folder`), so a server can never rewrite a model.
- **Artifact**: the server is told the sha256 the ModelVersion registers and
  refuses any other bytes; its refusal is its termination message, which the
  controller reads from the pod to report it and withdraw the version.
- **Feedback**: with ``feedback.tokenSecret`` the servers take the token from
  that Secret (the kubelet reads it; the operator never does) and ``/feedback``
  requires it as a bearer token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_operator.api.durations import parse_duration, promql_duration
from mlops_operator.api.metadata import (
    SCRAPE_ANNOTATION,
    SCRAPE_PATH_ANNOTATION,
    SCRAPE_PORT_ANNOTATION,
    TRAFFIC_LABEL,
    VERSION_LABEL,
)
from mlops_operator.api.modeldeployment import ModelDeployment, ModelDeploymentStatus
from mlops_operator.api.pods import DEFAULT_WORKLOAD_SECURITY, PodOverrides, WorkloadSecurityContext
from mlops_operator.podcontract import (
    EXIT_ARTIFACT_REFUSED,
    LABELS_MOUNT,
    PAYLOAD_LOG_MOUNT,
    TERMINATION_MESSAGE_PATH,
)
from mlops_operator.resources.common import (
    COMPONENT_LABEL,
    DEPLOYMENT_LABEL,
    ArtifactStorage,
    label_value,
    labels,
    owner_reference,
    resolve_artifact_uri,
    restricted_container_security_context,
    restricted_pod_security_context,
    scratch_mount,
    scratch_volume,
)
from mlops_operator.resources.labels import labels_key, labels_key_env
from mlops_operator.resources.payloadlog import payload_log_key, payload_log_root
from mlops_operator.resources.pods import with_overrides
from mlops_operator.serving.settings import ServingSettings

__all__ = [
    "DRAIN_SECONDS",
    "FEEDBACK_TOKEN_ENV",
    "GRPC_PORT_NAME",
    "SERVER_COMPONENT",
    "SERVER_CONTAINER",
    "SERVER_PORT",
    "SERVICE_PORT",
    "Forwarding",
    "artifact_refusal",
    "deployment_name",
    "grpc_port",
    "payload_log_uri",
    "recorded_status",
    "service_monitor",
    "service_url",
    "serving_deployment",
    "serving_env",
    "serving_selector",
    "serving_service",
    "version_service",
    "version_service_url",
]

SERVER_PORT = 8080
SERVICE_PORT = 80
DRAIN_SECONDS = 5.0
"""How long a stopping server keeps answering while its endpoint is removed everywhere."""
_GRACE_SECONDS = 30  # from SIGTERM to the kubelet's SIGKILL
# The server stops waiting for requests in flight 5 s before the kubelet's SIGKILL, so it
# still closes its payload log and exits by itself.
_SHUTDOWN_SECONDS = _GRACE_SECONDS - DRAIN_SECONDS - 5
SERVER_COMPONENT = "inference-server"
SERVER_CONTAINER = "server"
FEEDBACK_TOKEN_ENV = "MLOPS_FEEDBACK_TOKEN"
GRPC_PORT_NAME = "grpc"


def deployment_name(mdep: str, version: int) -> str:
    """The Deployment serving `version` for ModelDeployment `mdep`."""
    return f"{mdep}-v{version}"


@dataclass(frozen=True)
class Forwarding:
    """A share of the champion's requests sent to another version's Service."""

    url: str
    percent: int


def version_service_url(mdep: ModelDeployment, version: int) -> str:
    """The in-cluster base URL of one version's Service (`version_service`)."""
    name = deployment_name(mdep.name, version)
    return f"http://{name}.{mdep.namespace}.svc.cluster.local:{SERVICE_PORT}"


def service_url(mdep: ModelDeployment) -> str:
    """The in-cluster base URL of the inference endpoint."""
    return f"http://{mdep.name}.{mdep.namespace}.svc.cluster.local:{SERVICE_PORT}"


def _labels(mdep: ModelDeployment, **extra: str | None) -> dict[str, str]:
    return labels(mdep.spec.model_name, component=SERVER_COMPONENT, deployment=mdep.name, **extra)


def payload_log_uri(mdep: ModelDeployment, storage: ArtifactStorage) -> str | None:
    """Where `mdep`'s servers log their sample of requests, or None when logging is off."""
    logging = mdep.spec.payload_logging
    if not logging.enabled:
        return None
    return logging.uri or payload_log_root(storage, mdep.namespace, mdep.name)


def serving_env(
    mdep: ModelDeployment,
    *,
    version: int,
    artifact_uri: str,
    artifact_sha256: str,
    mirror: Forwarding | None = None,
    canary: Forwarding | None = None,
    log_uri: str | None = None,
    labels_uri: str | None = None,
    grpc_port: int = 0,
) -> list[dict[str, Any]]:
    """The server's settings (`ServingSettings`) rendered as container env entries.

    Secrets never pass through the manifest: with `labels_uri` (``spec.feedback``) the
    request-id key comes from the deployment's Secret (`resources.labels`), and with
    ``feedback.tokenSecret`` the feedback token from the user's; the kubelet reads both.
    """
    server = mdep.spec.server
    feedback = mdep.spec.feedback
    settings = ServingSettings(
        model_dir=resolve_artifact_uri(artifact_uri),
        expected_sha256=artifact_sha256,
        termination_message_path=Path(TERMINATION_MESSAGE_PATH),
        model_name=mdep.spec.model_name,
        model_version=str(version),
        port=SERVER_PORT,
        grpc_port=grpc_port or None,
        workers=server.workers,
        max_batch_rows=server.max_batch_size,
        batch_delay_ms=float(server.batch_delay_ms),
        max_rows=server.max_rows,
        timeout_ms=server.timeout_ms,
        shadow_url=mirror.url if mirror else None,
        shadow_percent=mirror.percent if mirror else 100,
        canary_url=canary.url if canary else None,
        canary_percent=canary.percent if canary else 0,
        drain_seconds=DRAIN_SECONDS,
        shutdown_timeout_seconds=_SHUTDOWN_SECONDS,
        payload_log_uri=log_uri,
        payload_log_sample_rate=mdep.spec.payload_logging.sample_rate if log_uri else 0.0,
        labels_uri=labels_uri,
        label_retention_seconds=(
            parse_duration(feedback.retention)
            if feedback and labels_uri
            else ServingSettings.model_fields["label_retention_seconds"].default
        ),
    )
    values = settings.model_dump(mode="json", exclude_defaults=True)
    entries: list[dict[str, Any]] = [
        {"name": f"MLOPS_{name.upper()}", "value": str(value)}
        for name, value in sorted(values.items())
    ]
    if labels_uri is not None:
        entries.append(labels_key_env(mdep))
    secret = feedback.token_secret if feedback else None
    if secret is not None:
        reference = {"name": secret.name, "key": secret.key}
        entries.append({"name": FEEDBACK_TOKEN_ENV, "valueFrom": {"secretKeyRef": reference}})
    return entries


def serving_deployment(
    mdep: ModelDeployment,
    *,
    version: int,
    model_version: str,
    artifact_uri: str,
    artifact_sha256: str,
    replicas: int,
    traffic: bool,
    image: str,
    storage: ArtifactStorage,
    mirror: Forwarding | None = None,
    canary: Forwarding | None = None,
    defaults: PodOverrides | None = None,
    grpc_port: int = 0,
    security: WorkloadSecurityContext = DEFAULT_WORKLOAD_SECURITY,
) -> dict[str, Any]:
    """The Deployment running the inference server for one version (gRPC too unless port 0);
    `mirror` and `canary` are the shares of its requests it sends to a challenger (the
    champion's only); `defaults` (the operator's server pod defaults), then the spec's
    overrides go over its pod, which runs with `security`'s ids."""
    selector = _labels(mdep, model_version=model_version) | {VERSION_LABEL: str(version)}
    pod_labels = selector | {TRAFFIC_LABEL: "true" if traffic else "false"}
    log_uri = payload_log_uri(mdep, storage)
    # The store is read-only: a server that could write it could replace the models it and
    # its neighbours serve. It writes only the deployment's own payload-log and label folders,
    # each mounted writable on its own.
    mounts = [scratch_mount(), *storage.mounts(read_only=True)]
    if log_uri is not None and mdep.spec.payload_logging.uri is None:
        key = payload_log_key(mdep.namespace, mdep.name)
        log_uri, writable = storage.writable_folder(key, PAYLOAD_LOG_MOUNT)
        mounts += writable
    labels_uri = None
    if mdep.spec.feedback:
        key = labels_key(mdep.namespace, mdep.name)
        labels_uri, writable = storage.writable_folder(key, LABELS_MOUNT)
        mounts += writable
    env = serving_env(
        mdep,
        version=version,
        artifact_uri=artifact_uri,
        artifact_sha256=artifact_sha256,
        mirror=mirror,
        canary=canary,
        log_uri=log_uri,
        labels_uri=labels_uri,
        grpc_port=grpc_port,
    )
    ports = [{"name": "http", "containerPort": SERVER_PORT, "protocol": "TCP"}]
    if grpc_port:
        ports.append({"name": GRPC_PORT_NAME, "containerPort": grpc_port, "protocol": "TCP"})
    container: dict[str, Any] = {
        "name": SERVER_CONTAINER,
        "image": image,
        "env": [*env, *storage.env()],
        "terminationMessagePath": TERMINATION_MESSAGE_PATH,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        **storage.env_from_field(),
        "ports": ports,
        "readinessProbe": {
            "httpGet": {"path": "/v2/health/ready", "port": "http"},
            "periodSeconds": 1,
            "failureThreshold": 2,
        },
        "livenessProbe": {
            "httpGet": {"path": "/v2/health/live", "port": "http"},
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "securityContext": restricted_container_security_context(),
        "volumeMounts": mounts,
    }
    template = {
        "metadata": {
            "labels": pod_labels,
            "annotations": {
                SCRAPE_ANNOTATION: "true",
                SCRAPE_PORT_ANNOTATION: str(SERVER_PORT),
                SCRAPE_PATH_ANNOTATION: "/metrics",
            },
        },
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": restricted_pod_security_context(security),
            "terminationGracePeriodSeconds": _GRACE_SECONDS,
            "containers": [container],
            "volumes": [scratch_volume(), *storage.volumes()],
        },
    }
    resources = PodOverrides(resources=mdep.spec.resources) if mdep.spec.resources else None
    layers = (defaults, mdep.spec.pod_overrides, resources)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(mdep.name, version),
            "namespace": mdep.namespace,
            "labels": selector,
            "ownerReferences": [owner_reference(mdep)],
        },
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 2,
            "selector": {"matchLabels": selector},
            # A new pod must be ready before an old one goes: no request meets an empty Service.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": with_overrides(template, "server", layers),
        },
    }


def grpc_port(mdep: ModelDeployment, default: int) -> int:
    """The gRPC port of `mdep`'s servers: its own `server.grpcPort`, else the operator's."""
    port = mdep.spec.server.grpc_port
    return default if port is None else port


def _service(
    mdep: ModelDeployment, name: str, selector: dict[str, str], grpc: int
) -> dict[str, Any]:
    ports: list[dict[str, Any]] = [
        {"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}
    ]
    if grpc:
        ports.append(
            {
                "name": GRPC_PORT_NAME,
                "port": grpc,
                "targetPort": GRPC_PORT_NAME,
                "protocol": "TCP",
                "appProtocol": "kubernetes.io/h2c",
            }
        )
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": mdep.namespace,
            "labels": _labels(mdep),
            "ownerReferences": [owner_reference(mdep)],
        },
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": ports,
        },
    }


def serving_service(mdep: ModelDeployment, grpc: int = 0) -> dict[str, Any]:
    """The one Service of the ModelDeployment: every ready pod that takes traffic."""
    selector = {DEPLOYMENT_LABEL: label_value(mdep.name), TRAFFIC_LABEL: "true"}
    return _service(mdep, mdep.name, selector, grpc)


def version_service(mdep: ModelDeployment, version: int, grpc: int = 0) -> dict[str, Any]:
    """The Service of one version's pods: what a challenger is mirrored or forwarded to,
    and a traffic router's backend."""
    selector = {DEPLOYMENT_LABEL: label_value(mdep.name), VERSION_LABEL: str(version)}
    return _service(mdep, deployment_name(mdep.name, version), selector, grpc)


def service_monitor(mdep: ModelDeployment) -> dict[str, Any]:
    """A Prometheus Operator ServiceMonitor scraping the serving pods through the Service."""
    settings = mdep.spec.monitoring.service_monitor
    interval = promql_duration(parse_duration(settings.interval))
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {
            "name": mdep.name,
            "namespace": mdep.namespace,
            "labels": _labels(mdep) | settings.labels,
            "ownerReferences": [owner_reference(mdep)],
        },
        "spec": {
            "selector": {"matchLabels": {DEPLOYMENT_LABEL: label_value(mdep.name)}},
            # Prometheus' durations take no fractions (`1.5m`): whole milliseconds always parse.
            "endpoints": [{"port": "http", "path": "/metrics", "interval": interval}],
        },
    }


def serving_selector(mdep: ModelDeployment, version: int | None = None) -> dict[str, str]:
    """Labels of every serving Deployment and pod of `mdep` (of one `version` when given)."""
    found = {DEPLOYMENT_LABEL: label_value(mdep.name), COMPONENT_LABEL: SERVER_COMPONENT}
    return found | ({VERSION_LABEL: str(version)} if version is not None else {})


def recorded_status(mdep: ModelDeployment, decided: ModelDeploymentStatus) -> ModelDeploymentStatus:
    """The status to record for a rollout decision: with the generation it answers, the
    endpoint's URL and the champion's pod selector (the scale subresource's)."""
    champion = decided.champion
    selector = serving_selector(mdep, champion.version) if champion else {}
    return decided.model_copy(
        update={
            "observed_generation": mdep.generation,
            "url": service_url(mdep),
            "selector": ",".join(f"{k}={v}" for k, v in selector.items()),
        }
    )


def artifact_refusal(pods: Sequence[Mapping[str, Any]]) -> str | None:
    """Why a version's serving pods refuse its artifact (their termination message), if they do.

    The server exits with `EXIT_ARTIFACT_REFUSED` and writes why as its termination
    message; the kubelet keeps it in the container's state, or its last state once the
    container restarted.
    """
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if status.get("name") != SERVER_CONTAINER:
                continue
            for state in (status.get("state") or {}, status.get("lastState") or {}):
                ended = state.get("terminated") or {}
                if ended.get("exitCode") == EXIT_ARTIFACT_REFUSED:
                    message = str(ended.get("message") or "").strip()
                    return message or "the server refused the artifact (no message)"
    return None
