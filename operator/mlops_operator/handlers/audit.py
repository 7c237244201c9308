"""Glue from a recorded decision to the audit Job that writes it to the store's audit log.

The controllers call `write_audit` after every status write, with the object's
whole recorded history as audit entries (oldest first). The object's
`AUDITED_ANNOTATION` names the newest entry already handed to a Job; when the
history's newest entry differs, one Job (`resources.audit`) is created — or
found, when an earlier attempt created it — and only then is the annotation
moved. An operator killed between the status write and the annotation therefore
creates the Job again (or finds it) on its next pass, and the appender writes
each entry once. A failure is logged and retried on the next pass; it never
blocks serving or retraining.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from mlops_operator.api.driftpolicy import DriftPolicy, LastRetrain
from mlops_operator.api.metadata import AUDITED_ANNOTATION
from mlops_operator.api.modeldeployment import HistoryEntry, ModelDeployment
from mlops_operator.api.modelversion import ModelVersion, Review
from mlops_operator.api.resource import API_VERSION
from mlops_operator.audit.entry import AuditEntry, log_key
from mlops_operator.audit.sources import deployment_entries, retrain_entry, review_entries
from mlops_operator.handlers.context import OperatorContext
from mlops_operator.k8s import ApiError, Conflict
from mlops_operator.resources.audit import audit_job

__all__ = ["audit_deployment", "audit_retrain", "audit_reviews", "audited", "write_audit"]

log = logging.getLogger(__name__)


async def write_audit(
    context: OperatorContext,
    *,
    api_version: str,
    plural: str,
    annotations: Mapping[str, str],
    entries: Sequence[AuditEntry],
    model: str,
    deployment: str | None = None,
) -> None:
    """Have the entries not yet handed to a Job appended to the object's audit log."""
    if not entries or annotations.get(AUDITED_ANNOTATION) == entries[-1].id:
        return
    newest = entries[-1]
    storage = context.storage
    manifest = audit_job(
        entries,
        key=log_key(newest.namespace, plural, newest.name),
        model=model,
        image=context.settings.trainer_image,
        storage=storage,
        deployment=deployment,
        defaults=context.settings.audit_pod,
        security=context.settings.workload_security_context,
    )
    try:
        # Conflict: an earlier pass made it and did not get to move the annotation.
        with contextlib.suppress(Conflict):
            await context.kube.create(manifest)
        await context.kube.patch(
            api_version,
            newest.kind,
            newest.name,
            newest.namespace,
            {"metadata": {"annotations": {AUDITED_ANNOTATION: newest.id}}},
        )
    except ApiError as error:
        log.warning("audit log of %s %s/%s not written yet: %s",
                    newest.kind, newest.namespace, newest.name, error)  # fmt: skip


async def audit_deployment(
    context: OperatorContext, mdep: ModelDeployment, history: Sequence[HistoryEntry]
) -> None:
    """Audit a ModelDeployment's recorded `history` (newest first, as in its status)."""
    uid = str(mdep.metadata.get("uid") or "")
    await write_audit(
        context,
        api_version=API_VERSION,
        plural=ModelDeployment.crd.plural,
        annotations=mdep.metadata.get("annotations") or {},
        entries=deployment_entries(mdep.namespace, mdep.name, uid, history),
        model=mdep.spec.model_name,
        deployment=mdep.name,
    )


async def audit_retrain(
    context: OperatorContext, policy: DriftPolicy, retrain: LastRetrain | None, model: str
) -> None:
    """Audit the DriftPolicy's latest recorded retrain (none yet: nothing to write)."""
    if retrain is None:
        return
    uid = str(policy.metadata.get("uid") or "")
    await write_audit(
        context,
        api_version=API_VERSION,
        plural=DriftPolicy.crd.plural,
        annotations=policy.metadata.get("annotations") or {},
        entries=[retrain_entry(policy.namespace, policy.name, uid, retrain)],
        model=model,
        deployment=policy.spec.deployment,
    )


def _review_entries(mv: ModelVersion, reviews: Sequence[Review]) -> list[AuditEntry]:
    uid = str(mv.metadata.get("uid") or "")
    return review_entries(mv.namespace, mv.name, uid, mv.spec.version, reviews)


async def audit_reviews(
    context: OperatorContext,
    mv: ModelVersion,
    annotations: Mapping[str, str],
    reviews: Sequence[Review],
) -> None:
    """Audit a ModelVersion's recorded reviews (approvals, rejections, revocations)."""
    await write_audit(
        context,
        api_version=API_VERSION,
        plural=ModelVersion.crd.plural,
        annotations=annotations,
        entries=_review_entries(mv, reviews),
        model=mv.spec.model_name,
    )


def audited(body: Mapping[str, Any], reviews: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the newest of a ModelVersion's recorded `reviews` (as stored) was handed to a Job.

    False also for a body that does not parse: the handler then reports it.
    """
    try:
        mv = ModelVersion.model_validate({k: v for k, v in body.items() if k != "status"})
        parsed = [Review.model_validate(r) for r in reviews]
    except ValidationError:
        return False
    annotations = mv.metadata.get("annotations") or {}
    return bool(annotations.get(AUDITED_ANNOTATION) == _review_entries(mv, parsed)[-1].id)
