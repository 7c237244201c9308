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
from datetime import UTC, datetime
from typing import Any, cast

import kopf
from pydantic import ValidationError

from mlops_operator.api.conditions import (
    Condition,
    ConditionStatus,
    ConditionType,
    Reason,
    set_conditions,
)
from mlops_operator.api.gates import Gates
from mlops_operator.api.metadata import TRAINING_JOB_UID_ANNOTATION
from mlops_operator.api.modeldeployment import ModelDeployment
from mlops_operator.api.modelversion import (
    GateResult,
    ModelVersion,
    ModelVersionPhase,
    ModelVersionStatus,
    ReviewAction,
)
from mlops_operator.api.resource import API_VERSION, GROUP, VERSION
from mlops_operator.decisions.gates import (
    evaluate_gates,
    gates_for,
    serving_deployments,
    verdict,
)
from mlops_operator.decisions.review import (
    REVIEW_REASONS,
    apply_review,
    awaiting_message,
    pending_review,
)
from mlops_operator.handlers.audit import audit_reviews, audited
from mlops_operator.handlers.context import OperatorContext
from mlops_operator.handlers.reconciling import current_conditions, parse, reconciles
from mlops_operator.handlers.trainingjob import JOB_UID_LABEL, storage_of
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
from mlops_operator.validator.report import CheckName

__all__ = ["accept_model_version", "validate_model_version"]

logger = logging.getLogger(__name__)

# The validator's checks, and the Job failing before any check reported.
_ARTIFACT_CHECKS = CheckName.ALL | {"validation"}
# Phases past validation: only people's reviews move them.
_REVIEWED = (
    ModelVersionPhase.AWAITING_APPROVAL.value,
    ModelVersionPhase.VALIDATED.value,
    ModelVersionPhase.REJECTED.value,
)
_KIND = "ModelVersion"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


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


def _post(obj: Mapping[str, Any], *, type: str, reason: str, message: str) -> None:
    kopf.event(kopf.Body(cast(kopf.RawBody, dict(obj))), type=type, reason=reason, message=message)


async def _write(kube: KubeClient, mv: ModelVersion, status: ModelVersionStatus) -> None:
    """Merge `status` into the stored one; an optional field it leaves out is cleared (an
    approval withdrawn must not linger in the merge)."""
    written = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    cleared = {
        field.alias or name: None
        for name, field in ModelVersionStatus.model_fields.items()
        if (field.alias or name) not in written and getattr(status, name) is None
    }
    await kube.patch_status(API_VERSION, _KIND, mv.name, mv.namespace, written | cleared)


def _conditions(
    conditions: list[Condition],
    generation: int | None,
    *pairs: tuple[ConditionType, ConditionStatus, Reason, str],
) -> list[Condition]:
    return set_conditions(conditions, pairs, observed_generation=generation, now=_now())


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
                await kube.get(API_VERSION, _KIND, champion.model_version, mv.namespace)
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
    deployments = await _deployments(context.kube, mv)
    gates = gates_for(mv, deployments)
    champions = await _champions(context.kube, mv, gates, deployments)
    if status.phase is not ModelVersionPhase.VALIDATING:
        conditions = _conditions(
            current_conditions(body), mv.generation,
            (ConditionType.VALIDATED, ConditionStatus.UNKNOWN, Reason.VALIDATING,
             _validating_message(mv, deployments, champions)),
            (ConditionType.READY, ConditionStatus.FALSE, Reason.VALIDATING, "not validated yet"),
        )  # fmt: skip
        status = status.model_copy(
            update={"phase": ModelVersionPhase.VALIDATING, "conditions": conditions,
                    "observed_generation": mv.generation}
        )  # fmt: skip
        await _write(context.kube, mv, status)
    job = validation_job(
        mv,
        image=context.settings.trainer_image,
        storage=storage_of(context.settings),
        gates=gates,
        champions=champions,
        defaults=context.settings.validator_pod,
    )
    try:
        await context.kube.create(job)
    except Conflict:
        return  # created meanwhile; the next tick checks whose it is


async def _judge(
    context: OperatorContext, mv: ModelVersion, body: kopf.Body, job: Mapping[str, Any]
) -> None:
    pods = await context.kube.list(
        "v1", "Pod", mv.namespace, labels={JOB_UID_LABEL: str(job["metadata"]["uid"])}
    )
    report = read_report(pods)
    try:
        gates = recorded_gates(job, mv.spec.gates)
    except ValidationError as error:
        gates, report = Gates(), f"the gates recorded on the validation Job do not parse: {error}"
    if isinstance(report, str):
        results = [GateResult(gate="validation", passed=False, message=report)]
        measured: dict[str, float] = {}
    else:
        results = evaluate_gates(
            gates,
            primary_metric=mv.spec.primary_metric.name,
            report=report,
            champions=recorded_champions(job),
        )
        measured = dict(report.candidate_metrics)
    imported = TRAINING_JOB_UID_ANNOTATION not in (mv.metadata.get("annotations") or {})
    if imported:
        results.append(GateResult(gate="provenance", passed=True, message=_IMPORTED))
    require_approval = gates.require_approval or imported
    phase = verdict(results, require_approval=require_approval, approval=None)
    failed = [r for r in results if not r.passed]
    if phase is ModelVersionPhase.REJECTED:
        message = "; ".join(f"{r.gate}: {r.message}" for r in failed)[:2000]
        pairs = (
            (ConditionType.VALIDATED, ConditionStatus.FALSE,
             Reason.ARTIFACT_INVALID if _artifact_failed(results) else Reason.GATE_FAILED, message),
            (ConditionType.READY, ConditionStatus.FALSE, Reason.GATE_FAILED, "rejected: " + message),
        )  # fmt: skip
    elif phase is ModelVersionPhase.AWAITING_APPROVAL:
        message = awaiting_message(
            "every gate passed"
            + ("; the version was not produced by a TrainingJob" if imported else "")
        )
        pairs = (
            (ConditionType.VALIDATED, ConditionStatus.UNKNOWN, Reason.AWAITING_APPROVAL, message),
            (ConditionType.READY, ConditionStatus.FALSE, Reason.AWAITING_APPROVAL, message),
        )
    else:
        message = f"{len(results)} checks and gates passed"
        pairs = (
            (ConditionType.VALIDATED, ConditionStatus.TRUE, Reason.VALIDATED, message),
            (ConditionType.READY, ConditionStatus.TRUE, Reason.VALIDATED, message),
        )
    status = _status(body).model_copy(
        update={
            "observed_generation": mv.generation,
            "phase": phase,
            "gate_results": results,
            "measured_metrics": measured,
            "validated_at": _now(),
            "conditions": _conditions(current_conditions(body), mv.generation, *pairs),
        }
    )
    await _write(context.kube, mv, status)
    kind = "Warning" if phase is ModelVersionPhase.REJECTED else "Normal"
    _post(body, type=kind, reason=pairs[0][2].value, message=message[:1000])


def _artifact_failed(results: list[GateResult]) -> bool:
    """Whether an artifact check (not a metric gate) failed."""
    return any(not r.passed and r.gate in _ARTIFACT_CHECKS for r in results)


async def _review(
    context: OperatorContext, mv: ModelVersion, body: kopf.Body, status: ModelVersionStatus
) -> None:
    """Record the decision a person's annotation asks for, and hand it to the audit log."""
    # Kopf's copy follows every change of the object, annotations included.
    annotations = dict(body.metadata.annotations)
    decision = pending_review(status.phase.value, status.approval is not None, annotations)
    if decision is not None:
        status, message = apply_review(status, *decision, now=_now(), generation=mv.generation)
        await _write(context.kube, mv, status)
        kind = "Normal" if decision[0] is ReviewAction.APPROVE else "Warning"
        _post(body, type=kind, reason=REVIEW_REASONS[decision[0]].value, message=message)
    await audit_reviews(context, mv, annotations, status.reviews)


_IMPORTED = (
    "not produced by a TrainingJob of this operator: nothing ties the artifact and its numbers"
    " to a training run the operator observed, so a person must approve it"
)


async def _name_conflict(kube: KubeClient, mv: ModelVersion, body: kopf.Body, job: str) -> None:
    """Report once (condition and Event) that the validation Job's name is taken."""
    status = _status(body)
    current = next((c for c in status.conditions if c.type == ConditionType.VALIDATED), None)
    if current is not None and current.reason == Reason.NAME_CONFLICT.value:
        return
    message = (
        f"a Job named {job} exists and is not controlled by this ModelVersion (uid"
        f" {mv.metadata.get('uid')}); the operator leaves it alone and validates once it is gone"
    )
    conditions = _conditions(
        current_conditions(body), mv.generation,
        (ConditionType.VALIDATED, ConditionStatus.UNKNOWN, Reason.NAME_CONFLICT, message),
        (ConditionType.READY, ConditionStatus.FALSE, Reason.NAME_CONFLICT, message),
    )  # fmt: skip
    await _write(kube, mv, status.model_copy(update={"conditions": conditions}))
    _post(body, type="Warning", reason=Reason.NAME_CONFLICT.value, message=message)


def _status(body: kopf.Body) -> ModelVersionStatus:
    """The stored status (`parse` leaves it out); one that does not parse starts over."""
    try:
        return ModelVersionStatus.model_validate(dict(body.get("status") or {}))
    except ValidationError:
        return ModelVersionStatus()


@kopf.timer(GROUP, VERSION, "modelversions", interval=2.0, when=_needs_work)
async def validate_model_version(
    body: kopf.Body, patch: kopf.Patch, memo: OperatorContext, **_: Any
) -> None:
    """Move a ModelVersion one step through validation (see the module docstring)."""
    mv = parse(ModelVersion, body, patch, ConditionType.VALIDATED)
    status = _status(body)
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
