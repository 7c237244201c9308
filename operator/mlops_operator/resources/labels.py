"""The label path of a ModelDeployment with `spec.feedback`: where its logs live, its key, its evaluator.

- **Logs.** ``labels/<namespace>/<deployment>`` in the artifact store: every serving
  pod of every version appends its prediction rows and the labels it is posted there
  (``serving/labels.py``), so a label reaches the join whichever pod took it.
- **Key.** The Secret ``<deployment>-labels-key-<uid>`` holds the key that signs request ids,
  shared by every pod of the deployment (and its challengers), so any pod verifies an id
  another issued. The operator creates it once with random bytes and never reads it
  (create is the only verb it has on Secrets); it is owned by the ModelDeployment.
- **Evaluator.** The Deployment ``<deployment>-evaluator`` (one pod, the server image
  running ``python -m mlops_operator.evaluator``) joins the logs with DuckDB and exports
  realized and estimated performance (`mlops_operator.realized`); the pod carries the
  deployment label and scrape annotations, so Prometheus and the operator's direct
  scrape find it beside the serving pods.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from mlops_operator.api.durations import parse_duration
from mlops_operator.api.metadata import (
    SCRAPE_ANNOTATION,
    SCRAPE_PATH_ANNOTATION,
    SCRAPE_PORT_ANNOTATION,
)
from mlops_operator.api.modeldeployment import Feedback, ModelDeployment
from mlops_operator.api.pods import DEFAULT_WORKLOAD_SECURITY, WorkloadSecurityContext
from mlops_operator.evaluator.settings import EvaluatorSettings
from mlops_operator.realized import EVALUATOR_COMPONENT
from mlops_operator.resources.common import (
    ArtifactStorage,
    label_value,
    labels,
    owner_reference,
    restricted_container_security_context,
    restricted_pod_security_context,
    scratch_mount,
    scratch_volume,
)

__all__ = [
    "EVALUATOR_PORT",
    "LABELS_KEY_ENV",
    "LABELS_KEY_FIELD",
    "evaluator_deployment",
    "evaluator_name",
    "evaluator_selector",
    "labels_key",
    "labels_key_env",
    "labels_key_secret",
    "labels_key_secret_name",
    "labels_root",
]

LABELS_FOLDER = "labels"
LABELS_KEY_ENV = "MLOPS_LABELS_KEY"
LABELS_KEY_FIELD = "key"
EVALUATOR_PORT = 8080
_EVALUATE_SECONDS = 10.0


def labels_key(namespace: str, deployment: str) -> str:
    """The store key of the deployment's label logs."""
    # Both parts are DNS names (checked by the API), so the key needs no further checking.
    return f"{LABELS_FOLDER}/{namespace}/{deployment}"


def labels_root(storage: ArtifactStorage, namespace: str, deployment: str) -> str:
    """The deployment's label logs as a pod that mounts the whole store sees them."""
    return f"{storage.store_uri}/{labels_key(namespace, deployment)}"


def labels_key_secret_name(mdep: ModelDeployment) -> str:
    """The Secret holding the deployment's request-id key: named after it and its uid.

    The operator may only create Secrets, never read them, so it cannot tell its own from
    a namesake's: the uid keeps a ModelDeployment deleted and created again under its name
    from taking the earlier one's Secret (still there until garbage-collected) as its own.
    """
    uid = str(mdep.metadata.get("uid") or "").replace("-", "")[:8]
    return label_value(f"{mdep.name}-labels-key-{uid}")


def labels_key_secret(mdep: ModelDeployment, key: bytes) -> dict[str, Any]:
    """The Secret with `key` (random bytes the caller draws once)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": labels_key_secret_name(mdep),
            "namespace": mdep.namespace,
            "labels": labels(mdep.spec.model_name, deployment=mdep.name),
            "ownerReferences": [owner_reference(mdep)],
        },
        "type": "Opaque",
        "data": {LABELS_KEY_FIELD: base64.b64encode(key.hex().encode()).decode()},
    }


def labels_key_env(mdep: ModelDeployment) -> dict[str, Any]:
    """The serving container's env entry reading the key from the Secret."""
    return {
        "name": LABELS_KEY_ENV,
        "valueFrom": {
            "secretKeyRef": {"name": labels_key_secret_name(mdep), "key": LABELS_KEY_FIELD}
        },
    }


def evaluator_name(deployment: str) -> str:
    """The evaluator Deployment of a ModelDeployment."""
    return f"{deployment}-evaluator"


def evaluator_selector(mdep: ModelDeployment) -> dict[str, str]:
    """Labels of the evaluator's Deployment and pod."""
    return labels(mdep.spec.model_name, component=EVALUATOR_COMPONENT, deployment=mdep.name)


def _created(mdep: ModelDeployment) -> float | None:
    """When `mdep` was created (Unix seconds), if the API server said so."""
    stamp = mdep.metadata.get("creationTimestamp")
    if not stamp:
        return None
    return datetime.fromisoformat(str(stamp)).timestamp()


def evaluator_settings(
    mdep: ModelDeployment, feedback: Feedback, storage: ArtifactStorage
) -> EvaluatorSettings:
    """What the evaluator is told (rendered into its env)."""
    return EvaluatorSettings(
        labels_uri=labels_root(storage, mdep.namespace, mdep.name),
        model_name=mdep.spec.model_name,
        window_seconds=parse_duration(feedback.window),
        min_label_coverage=feedback.min_label_coverage,
        max_label_delay_seconds=parse_duration(feedback.max_label_delay),
        retention_seconds=parse_duration(feedback.retention),
        not_before=_created(mdep),
        interval_seconds=_EVALUATE_SECONDS,
        port=EVALUATOR_PORT,
    )


def evaluator_deployment(
    mdep: ModelDeployment,
    *,
    image: str,
    storage: ArtifactStorage,
    security: WorkloadSecurityContext = DEFAULT_WORKLOAD_SECURITY,
) -> dict[str, Any]:
    """The evaluator's Deployment (one pod, with `security`'s ids), or ValueError without
    `spec.feedback`."""
    feedback = mdep.spec.feedback
    if feedback is None:
        raise ValueError(f"ModelDeployment {mdep.name} has no spec.feedback to evaluate")
    settings = evaluator_settings(mdep, feedback, storage)
    values = settings.model_dump(mode="json", exclude_defaults=True)
    env = [{"name": f"MLOPS_{k.upper()}", "value": str(v)} for k, v in sorted(values.items())]
    selector = evaluator_selector(mdep)
    container = {
        "name": EVALUATOR_COMPONENT,
        "image": image,
        "command": ["python", "-m", "mlops_operator.evaluator"],
        "env": [*env, *storage.env()],
        # An object store's credentials: without them the evaluator reads no log at all.
        **storage.env_from_field(),
        "ports": [{"name": "http", "containerPort": EVALUATOR_PORT, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": "/v2/health/ready", "port": "http"},
            "periodSeconds": 2,
        },
        "livenessProbe": {
            "httpGet": {"path": "/v2/health/live", "port": "http"},
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "securityContext": restricted_container_security_context(),
        "volumeMounts": [scratch_mount(), *storage.mounts(read_only=True)],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": evaluator_name(mdep.name),
            "namespace": mdep.namespace,
            "labels": selector,
            "ownerReferences": [owner_reference(mdep)],
        },
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 2,
            "selector": {"matchLabels": selector},
            # One joiner at a time: its numbers are the one source every consumer reads.
            "strategy": {"type": "Recreate"},
            "template": {
                "metadata": {
                    "labels": selector,
                    "annotations": {
                        SCRAPE_ANNOTATION: "true",
                        SCRAPE_PORT_ANNOTATION: str(EVALUATOR_PORT),
                        SCRAPE_PATH_ANNOTATION: "/metrics",
                    },
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": restricted_pod_security_context(security),
                    "containers": [container],
                    "volumes": [scratch_volume(), *storage.volumes()],
                },
            },
        },
    }
