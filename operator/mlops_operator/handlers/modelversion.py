"""The ModelVersion controller: validate the artifact in a Job, judge the gates, record reviews.

A timer runs every few seconds on each ModelVersion that is not yet Validated or
Rejected, or that a person's decision waits on, and moves it one state at a time,
recording each state before acting:

1. **Pending → Validating**: settle the gates (the version's own merged with
   those of the ModelDeployments that may serve it, `decisions.gates.gates_for`)
   and the champions to compare with (only when the gates compare), record
   ``Validating``, then create the validation Job ``<mv>-validate``
   (`mlops_operator.resources.validation`), which notes both. A Job of that name
   that this version does not control is left alone and reported (``NameConflict``).
2. **Validating → Validated / Rejected / AwaitingApproval**: once the Job ended,
   read its report from the pod's termination message and judge every gate with
   `mlops_operator.decisions.gates` on the numbers the Job measured itself; the
   evidence goes to ``status.gateResults`` and ``status.measuredMetrics``, the
   verdict to the phase, the ``Validated`` and ``Ready`` conditions and an Event.
   A version the operator did not produce from a TrainingJob (no
   `TRAINING_JOB_UID_ANNOTATION`, which only the operator may set) is held for approval
   whatever its gates say: nothing ties its artifact to a training run.
3. **Reviews**: a person's approval, rejection or revocation of an approval
   (annotations the API server admits only from a user holding the verb and
   naming that user, `mlops_operator.api.governance`) moves the phase
   (`mlops_operator.decisions.review`), is recorded in ``status.reviews`` and an
   Event, and is appended to the version's audit log.

A crash anywhere repeats at most the step in progress: the Job's name is
deterministic and an existing Job is reused.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf
from pydantic import ValidationError

from mlops_operator.api.conditions import ConditionType, Reason
from mlops_operator.api.events import Event, EventType
from mlops_operator.api.gates import Gates
from mlops_operator.api.metadata import JOB_UID_LABEL, TRAINING_JOB_UID_ANNOTATION
from mlops_operator.api.modeldeployment import ModelDeployment
from mlops_operator.api.modelversion import (
    ModelVersion,
    ModelVersionPhase,
    ModelVersionStatus,
    ReviewAction,
)
from mlops_operator.api.resource import API_VERSION, GROUP, VERSION
from mlops_operator.decisions.gates import gates_for, serving_deployments
from mlops_operator.decisions.review import REVIEW_REASONS, apply_review, pending_review
from mlops_operator.decisions.validation import (
    judged_status,
    name_conflict_status,
    validating_status,
)
from mlops_operator.handlers.audit import audit_reviews, audited
from mlops_operator.handlers.context import OperatorContext
from mlops_operator.handlers.kit import now, post, stored_status, write_status
from mlops_operator.handlers.reconciling import current_conditions, parse, reconciles
from mlops_operator.k8s import Conflict, KubeClient, NotFound
from mlops_operator.resources.common import controlled_by
from mlops_operator.resources.trainingjob import is_finished
from mlops_operator.resources.validation import (
    read_report,
    recorded_champions,
    recorded_gates,
    validation_job,
    validation_job_name,
)

__all__ = ["accept_model_version", "validate_model_version"]

logger = logging.getLogger(__name__)

# Phases past validation: only people's reviews move them.
_REVIEWED = (
    ModelVersionPhase.AWAITING_APPROVAL.value,
    ModelVersionPhase.VALIDATED.value,
    ModelVersionPhase.REJECTED.value,
)


def _needs_work(
    body: kopf.Body, status: Mapping[str, Any], annotations: Mapping[str, str], **_: Any
) -> bool:
    """Whether a tick has something to do: validation unfinished, a review not recorded yet,
    or one recorded but not yet handed to the audit log."""
    phase = status.get("phase")
    if phase not in _REVIEWED:
        return True
    if pending_review(phase, bool(status.get("approval")), annotations) is not None:
        return True
    reviews = status.get("reviews") or []
    return bool(reviews) and not audited(body, reviews)


async def _deployments(kube: KubeClient, mv: ModelVersion) -> list[ModelDeployment]:
    """The ModelDeployments of the version's model in its namespace."""
    found = []
    for raw in await kube.list(API_VERSION, "ModelDeployment", mv.namespace):
        try:
            mdep = ModelDeployment.model_validate(raw)
        except ValidationError:
            continue  # its own controller reports the invalid spec
        if mdep.spec.model_name == mv.spec.model_name:
            found.append(mdep)
    return found


async def _champions(
    kube: KubeClient, mv: ModelVersion, gates: Gates, deployments: list[ModelDeployment]
) -> dict[str, str]:
    """Champion ModelVersion name -> artifact URI, for the deployments the comparison names."""
    if gates.compare_to_champion is None:
        return {}
    wanted = gates.compare_to_champion.deployment or mv.spec.target_deployment
    found: dict[str, str] = {}
    for mdep in deployments:
        if wanted and mdep.name != wanted:
            continue
        champion = mdep.status.champion if mdep.status else None
        if champion is None or champion.model_version == mv.name:
            continue
        try:
            other = ModelVersion.model_validate(
                await kube.get(API_VERSION, "ModelVersion", champion.model_version, mv.namespace)
            )
        except NotFound:
            continue
        found[other.name] = other.spec.artifact.uri
    return found


def _validating_message(
    mv: ModelVersion, deployments: list[ModelDeployment], champions: Mapping[str, str]
) -> str:
    message = "the validation Job checks the artifact"
    if champions:
        message += f" and measures it beside {', '.join(sorted(champions))}"
    gated = sorted(d.name for d in serving_deployments(mv, deployments) if d.spec.gates)
    if gated:
        message += f"; with the gates of ModelDeployment {', '.join(gated)}"
    return message


async def _start(
    context: OperatorContext, mv: ModelVersion, body: kopf.Body, status: ModelVersionStatus
) -> None:
    """Record Validating, then create the validation Job (unless the record was dropped)."""
    deployments = await _deployments(context.kube, mv)
    gates = gates_for(mv, deployments)
    champions = await _champions(context.kube, mv, gates, deployments)
    if status.phase is not ModelVersionPhase.VALIDATING:
        validating = validating_status(
            status,
            current_conditions(body),
            generation=mv.generation,
            message=_validating_message(mv, deployments, champions),
            now=now(),
        )
        if await write_status(context.kube, body, validating) is None:
            return  # decided from an old copy: the next tick starts again
    job = validation_job(
        mv,
        image=context.settings.trainer_image,
        storage=context.storage,
        gates=gates,
        champions=champions,
        defaults=context.settings.validator_pod,
        security=context.settings.workload_security_context,
    )
    try:
        await context.kube.create(job)
    except Conflict:
        return  # created meanwhile; the next tick checks whose it is


async def _judge(
    context: OperatorContext, mv: ModelVersion, body: kopf.Body, job: Mapping[str, Any]
) -> None:
    """Record the verdict on the ended validation Job's report, then post its Event."""
    pods = await context.kube.list(
        "v1", "Pod", mv.namespace, labels={JOB_UID_LABEL: str(job["metadata"]["uid"])}
    )
    report = read_report(pods)
    try:
        gates = recorded_gates(job, mv.spec.gates)
    except ValidationError as error:
        gates, report = Gates(), f"the gates recorded on the validation Job do not parse: {error}"
    status, event = judged_status(
        stored_status(body, ModelVersionStatus),
        current_conditions(body),
        report,
        gates,
        primary_metric=mv.spec.primary_metric.name,
        champions=recorded_champions(job),
        imported=TRAINING_JOB_UID_ANNOTATION not in (mv.metadata.get("annotations") or {}),
        generation=mv.generation,
        now=now(),
    )
    if await write_status(context.kube, body, status) is not None:
        post(body, event)


async def _review(
    context: OperatorContext, mv: ModelVersion, body: kopf.Body, status: ModelVersionStatus
) -> None:
    """Record the decision a person's annotation asks for, and hand it to the audit log."""
    # Kopf's copy follows every change of the object, annotations included.
    annotations = dict(body.metadata.annotations)
    decision = pending_review(status.phase.value, status.approval is not None, annotations)
    if decision is not None:
        status, message = apply_review(status, *decision, now=now(), generation=mv.generation)
        if await write_status(context.kube, body, status) is None:
            return  # decided from an old copy: the next tick reviews again
        kind = EventType.NORMAL if decision[0] is ReviewAction.APPROVE else EventType.WARNING
        post(body, Event(kind, REVIEW_REASONS[decision[0]], message))
    await audit_reviews(context, mv, annotations, status.reviews)


async def _name_conflict(kube: KubeClient, mv: ModelVersion, body: kopf.Body, job: str) -> None:
    """Report once (condition and Event) that the validation Job's name is taken."""
    message = (
        f"a Job named {job} exists and is not controlled by this ModelVersion (uid"
        f" {mv.metadata.get('uid')}); the operator leaves it alone and validates once it is gone"
    )
    status = name_conflict_status(
        stored_status(body, ModelVersionStatus),
        current_conditions(body),
        message,
        generation=mv.generation,
        now=now(),
    )
    if status is not None and await write_status(kube, body, status) is not None:
        post(body, Event.warning(Reason.NAME_CONFLICT, message))


@kopf.timer(GROUP, VERSION, "modelversions", interval=2.0, when=_needs_work)
async def validate_model_version(
    body: kopf.Body, patch: kopf.Patch, memo: OperatorContext, **_: Any
) -> None:
    """Move a ModelVersion one step through validation (see the module docstring)."""
    mv = parse(ModelVersion, body, patch, ConditionType.VALIDATED)
    status = stored_status(body, ModelVersionStatus)
    if status.phase.value in _REVIEWED:
        await _review(memo, mv, body, status)
        return
    name = validation_job_name(mv.name)
    try:
        job = await memo.kube.get("batch/v1", "Job", name, mv.namespace)
    except NotFound:
        await _start(memo, mv, body, status)
        return
    if not controlled_by(job, mv):
        await _name_conflict(memo.kube, mv, body, name)
        return
    if is_finished(job):
        await _judge(memo, mv, body, job)


@reconciles(ModelVersion)
async def accept_model_version(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    """On create, spec change or restart: refuse (once, with an Event) a spec the model rejects.

    The timer does the work; this handler makes a refusal immediate, and Kopf's
    bookkeeping of handled specs (annotations) and the reconcile metrics cover the kind.
    """
    parse(ModelVersion, body, patch, ConditionType.VALIDATED)
