"""Every label and annotation key the operator sets or reads, in one catalogue.

Keys cross boundaries: the operator writes them and reads them back (after a
restart, from a watch), the CLI and the kubectl plugin select and annotate by
them, Prometheus discovers the serving pods by them, and users write some
(``requested-by``, ``approved-by``). Each module that uses a key imports its
constant from here; a test checks that no ``mlops.dev/`` or ``prometheus.io/``
key is spelled anywhere else in the package (the local cluster, a separate
system with its own node-level keys, aside) and that docs/api.md lists them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ANNOTATION_PREFIX",
    "APPROVED_BY_ANNOTATION",
    "AUDITED_ANNOTATION",
    "AUDIT_ENTRY_ANNOTATION",
    "CATALOGUE",
    "CHAMPIONS_ANNOTATION",
    "COMPONENT_LABEL",
    "DEPLOYMENT_LABEL",
    "DRIFT_POLICY_LABEL",
    "GATES_ANNOTATION",
    "JOB_NAME_LABEL",
    "JOB_UID_LABEL",
    "MANAGED_BY_LABEL",
    "MODEL_LABEL",
    "MODEL_VERSION_LABEL",
    "PART_OF_LABEL",
    "REJECTED_BY_ANNOTATION",
    "REQUESTED_BY_ANNOTATION",
    "RETRAIN_REASON_ANNOTATION",
    "RETRAIN_VALUES_ANNOTATION",
    "REVOKED_BY_ANNOTATION",
    "SCRAPE_ANNOTATION",
    "SCRAPE_PATH_ANNOTATION",
    "SCRAPE_PORT_ANNOTATION",
    "TRAFFIC_LABEL",
    "TRAINING_JOB_GENERATION_ANNOTATION",
    "TRAINING_JOB_LABEL",
    "TRAINING_JOB_UID_ANNOTATION",
    "VERSION_LABEL",
    "MetadataKey",
]


@dataclass(frozen=True)
class MetadataKey:
    """One key: a label or an annotation, where it sits, and what it means."""

    key: str
    kind: Literal["label", "annotation"]
    on: str
    meaning: str


ANNOTATION_PREFIX = "mlops.dev"
"""Kopf's own bookkeeping (progress, last-handled configuration, finalizer) uses this prefix."""
FINALIZER = f"{ANNOTATION_PREFIX}/finalizer"
"""The operator's finalizer on every object it handles (Kopf's, under our prefix)."""

# Labels.
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
PART_OF_LABEL = "app.kubernetes.io/part-of"
COMPONENT_LABEL = "app.kubernetes.io/component"
MODEL_LABEL = "mlops.dev/model"
TRAINING_JOB_LABEL = "mlops.dev/training-job"
MODEL_VERSION_LABEL = "mlops.dev/model-version"
DEPLOYMENT_LABEL = "mlops.dev/deployment"
VERSION_LABEL = "mlops.dev/version"
TRAFFIC_LABEL = "mlops.dev/traffic"
DRIFT_POLICY_LABEL = "mlops.dev/drift-policy"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
JOB_UID_LABEL = "batch.kubernetes.io/controller-uid"

# Annotations.
TRAINING_JOB_UID_ANNOTATION = "mlops.dev/training-job-uid"
TRAINING_JOB_GENERATION_ANNOTATION = "mlops.dev/training-job-generation"
GATES_ANNOTATION = "mlops.dev/gates"
CHAMPIONS_ANNOTATION = "mlops.dev/champions"
AUDIT_ENTRY_ANNOTATION = "mlops.dev/audit-entry"
AUDITED_ANNOTATION = "mlops.dev/audited"
RETRAIN_REASON_ANNOTATION = "mlops.dev/retrain-reason"
RETRAIN_VALUES_ANNOTATION = "mlops.dev/retrain-values"
REQUESTED_BY_ANNOTATION = "mlops.dev/requested-by"
APPROVED_BY_ANNOTATION = "mlops.dev/approved-by"
REJECTED_BY_ANNOTATION = "mlops.dev/rejected-by"
REVOKED_BY_ANNOTATION = "mlops.dev/revoked-by"
SCRAPE_ANNOTATION = "prometheus.io/scrape"
SCRAPE_PORT_ANNOTATION = "prometheus.io/port"
SCRAPE_PATH_ANNOTATION = "prometheus.io/path"

_CREATED = "every object the operator creates"

CATALOGUE: tuple[MetadataKey, ...] = (
    MetadataKey(
        MANAGED_BY_LABEL, "label", _CREATED, "`mlops-operator`; the Job watch selects by it"
    ),
    MetadataKey(PART_OF_LABEL, "label", _CREATED, "`mlops-operator`"),
    MetadataKey(
        COMPONENT_LABEL,
        "label",
        "Jobs, Deployments, Services, pods",
        "`trainer`, `validator`, `audit` or `inference-server`",
    ),
    MetadataKey(MODEL_LABEL, "label", _CREATED, "the model's name: a model's whole footprint"),
    MetadataKey(
        TRAINING_JOB_LABEL, "label", "trainer Jobs and pods, ModelVersions", "the TrainingJob"
    ),
    MetadataKey(
        MODEL_VERSION_LABEL,
        "label",
        "ModelVersions, validation Jobs, serving Deployments and pods",
        "the ModelVersion",
    ),
    MetadataKey(
        DEPLOYMENT_LABEL,
        "label",
        "serving Deployments, Services, pods; audit Jobs",
        "the ModelDeployment; the DriftPolicy finds the pods to scrape by it",
    ),
    MetadataKey(
        VERSION_LABEL,
        "label",
        "serving Deployments, per-version Services, pods",
        "the version number a pod serves",
    ),
    MetadataKey(
        TRAFFIC_LABEL,
        "label",
        "serving pods",
        "`true` on the pods the ModelDeployment's Service routes user traffic to",
    ),
    MetadataKey(
        DRIFT_POLICY_LABEL,
        "label",
        "TrainingJobs a DriftPolicy created",
        'the policy (cooldown, budget and "one at a time" count them)',
    ),
    MetadataKey(
        JOB_NAME_LABEL, "label", "pods of a Job (set by Kubernetes)", "read to find a Job's pods"
    ),
    MetadataKey(
        JOB_UID_LABEL,
        "label",
        "pods of a Job (set by Kubernetes)",
        "read to find the pods of one Job (the uid: pods of an earlier Job of that name may linger)",
    ),
    MetadataKey(
        TRAINING_JOB_UID_ANNOTATION,
        "annotation",
        "ModelVersions",
        "the uid of the TrainingJob that produced it (names can be reused, uids not)",
    ),
    MetadataKey(
        TRAINING_JOB_GENERATION_ANNOTATION,
        "annotation",
        "trainer Jobs",
        "the TrainingJob generation the Job reflects (`suspend` may change)",
    ),
    MetadataKey(
        GATES_ANNOTATION,
        "annotation",
        "validation Jobs",
        "the gates fixed when the Job was created (JSON)",
    ),
    MetadataKey(
        CHAMPIONS_ANNOTATION,
        "annotation",
        "validation Jobs",
        "the champion ModelVersions the validator measured (JSON)",
    ),
    MetadataKey(
        AUDIT_ENTRY_ANNOTATION, "annotation", "audit Jobs", "the newest audit entry the Job appends"
    ),
    MetadataKey(
        AUDITED_ANNOTATION,
        "annotation",
        "ModelDeployments, DriftPolicies",
        "the id of the newest entry handed to an audit Job",
    ),
    MetadataKey(
        RETRAIN_REASON_ANNOTATION,
        "annotation",
        "TrainingJobs a DriftPolicy created",
        "why: the triggers that fired and their values",
    ),
    MetadataKey(
        RETRAIN_VALUES_ANNOTATION,
        "annotation",
        "TrainingJobs a DriftPolicy created",
        "every trigger's measured value at that evaluation (JSON)",
    ),
    MetadataKey(
        REQUESTED_BY_ANNOTATION,
        "annotation",
        "ModelDeployments (set by `mlops rollback`/`promote`)",
        "the user who changed the served version by hand (verb `promote` or `rollback`,"
        " admission-checked to be the requester); the actor of a manual rollback",
    ),
    MetadataKey(
        APPROVED_BY_ANNOTATION,
        "annotation",
        "ModelVersions (set by `mlops approve`)",
        "the user who approved a version held by `requireApproval` (verb `approve`,"
        " admission-checked to be the requester)",
    ),
    MetadataKey(
        REJECTED_BY_ANNOTATION,
        "annotation",
        "ModelVersions (set by `mlops reject`)",
        "the user who rejected the version for good (verb `reject`)",
    ),
    MetadataKey(
        REVOKED_BY_ANNOTATION,
        "annotation",
        "ModelVersions",
        "the user who withdrew an approval, set when `approved-by` is removed (verb `approve`)",
    ),
    MetadataKey(SCRAPE_ANNOTATION, "annotation", "serving pods", "`true`: Prometheus scrapes it"),
    MetadataKey(SCRAPE_PORT_ANNOTATION, "annotation", "serving pods", "the metrics port"),
    MetadataKey(SCRAPE_PATH_ANNOTATION, "annotation", "serving pods", "`/metrics`"),
)
