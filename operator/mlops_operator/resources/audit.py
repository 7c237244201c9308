"""The audit Job: the trainer image appending a batch of decisions to an audit log in the store.

One Job per newest entry, named ``<object>-audit-<entry id>`` (shortened with a
hash when long), so re-creating it after a crash finds the one already made. It
carries the object's whole bounded history, oldest first: whichever of several
such Jobs runs first writes every missing entry in order, and the others find
nothing to add (`mlops_operator.audit.log`). Not owned by the object: the
decisions of a deleted ModelDeployment are still written. A finished Job is
removed after `TTL_SECONDS`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from mlops_operator.api.metadata import AUDIT_ENTRY_ANNOTATION
from mlops_operator.api.pods import DEFAULT_WORKLOAD_SECURITY, PodOverrides, WorkloadSecurityContext
from mlops_operator.audit.entry import AuditEntry
from mlops_operator.podcontract import AUDIT_ENTRIES_ENV
from mlops_operator.resources.common import (
    ArtifactStorage,
    labels,
    restricted_job,
    scratch_mount,
    scratch_volume,
)

__all__ = ["TTL_SECONDS", "audit_job", "audit_job_name"]

TTL_SECONDS = 300
_MAX_NAME = 63  # the Job's name becomes a label value on its pods
_ID_CHARS = 10


def audit_job_name(name: str, newest_id: str) -> str:
    """The Job's deterministic name for the batch whose newest entry has id `newest_id`."""
    suffix = f"-audit-{newest_id[:_ID_CHARS]}"
    if len(name) + len(suffix) <= _MAX_NAME:
        return name + suffix
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: _MAX_NAME - len(suffix) - 9].rstrip('-.')}-{digest}{suffix}"


def audit_job(
    entries: Sequence[AuditEntry],
    *,
    key: str,
    model: str,
    image: str,
    storage: ArtifactStorage,
    deployment: str | None = None,
    deadline_seconds: int = 300,
    defaults: PodOverrides | None = None,
    security: WorkloadSecurityContext = DEFAULT_WORKLOAD_SECURITY,
) -> dict[str, Any]:
    """The Job appending `entries` (one object's, oldest first) to the log at store `key`;
    `defaults` (the operator's audit pod defaults) go over its pod, which runs with
    `security`'s ids."""
    if not entries:
        raise ValueError("an audit Job needs at least one entry")
    newest = entries[-1]
    job_labels = labels(model, component="audit", deployment=deployment)
    payload = json.dumps([entry.model_dump(mode="json", exclude_none=True) for entry in entries])
    container = {
        "name": "audit",
        "image": image,
        "command": ["python", "-m", "mlops_operator.audit", "append", "--key", key],
        "env": [{"name": AUDIT_ENTRIES_ENV, "value": payload}, *storage.env()],
        **storage.env_from_field(),
        "volumeMounts": [scratch_mount(), *storage.mounts()],
    }
    metadata = {
        "name": audit_job_name(newest.name, newest.id),
        "namespace": newest.namespace,
        "labels": job_labels,
        "annotations": {AUDIT_ENTRY_ANNOTATION: newest.id},
    }
    spec = {
        "backoffLimit": 6,
        "activeDeadlineSeconds": deadline_seconds,
        "ttlSecondsAfterFinished": TTL_SECONDS,
    }
    volumes = [scratch_volume("16Mi"), *storage.volumes()]
    return restricted_job(metadata, container, volumes, spec, (defaults,), security=security)
