"""The ModelVersion controller: validate the artifact in a Job, judge the gates, hold for approval.

A timer runs every few seconds on each ModelVersion that is not yet Validated or
Rejected, and moves it one state at a time, recording each state before acting:

1. **Pending → Validating**: settle the gates (the version's own merged with
   those of the ModelDeployments that may serve it, `decisions.gates.gates_for`)
   and the champions to compare with (only when the gates compare), record
   ``Validating``, then create the validation Job ``<mv>-validate``
   (`mlops_operator.resources.validation`), which notes both.
2. **Validating → Validated / Rejected / AwaitingApproval**: once the Job ended,
   read its report from the pod's termination message and judge every gate with
   `mlops_operator.decisions.gates`; the evidence goes to ``status.gateResults``,
   the verdict to the phase, the ``Validated`` and ``Ready`` conditions and an Event.
3. **AwaitingApproval → Validated**: when the annotation `APPROVED_BY_ANNOTATION` appears,
   the approver and the time are recorded in ``status.approval`` and an Event
   (who may set it is a question of RBAC on ModelVersions; ``mlops approve`` sets
   it to the caller's authenticated user name).

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

from mlops_operator.api.conditions import Condition, ConditionStatus, ConditionType, Reason
from mlops_operator.api.conditions import set_condition as _set
from mlops_operator.api.gates import Gates
from mlops_operator.api.metadata import APPROVED_BY_ANNOTATION
from mlops_operator.api.modeldeployment import ModelDeployment
from mlops_operator.api.modelversion import (
    Approval,
    GateResult,
    ModelVersion,
    ModelVersionPhase,
    ModelVersionStatus,
)
from mlops_operator.api.resource import API_VERSION, GROUP, VERSION
from mlops_operator.decisions.gates import (
    evaluate_gates,
    gates_for,
    serving_deployments,
    verdict,
)
from mlops_operator.handlers.context import OperatorContext
from mlops_operator.handlers.reconciling import current_conditions, parse, reconciles
from mlops_operator.handlers.trainingjob import storage_of
from mlops_operator.k8s import Conflict, KubeClient, NotFound
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


_FINAL = (ModelVersionPhase.VALIDATED.value, ModelVersionPhase.REJECTED.value)
# The validator's checks, and the Job failing before any check reported.
_ARTIFACT_CHECKS = CheckName.ALL | {"validation"}
_KIND = "ModelVersion"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _unfinished(status: Mapping[str, Any], **_: Any) -> bool:
    return status.get("phase") not in _FINAL


def _post(obj: Mapping[str, Any], *, type: str, reason: str, message: str) -> None:
    kopf.event(kopf.Body(cast(kopf.RawBody, dict(obj))), type=type, reason=reason, message=message)


async def _write(kube: KubeClient, mv: ModelVersion, status: ModelVersionStatus) -> None:
    await kube.patch_status(
        API_VERSION,
        _KIND,
        mv.name,
        mv.namespace,
        status.model_dump(mode="json", by_alias=True, exclude_none=True),
    )


def _conditions(
    conditions: list[Condition],
    generation: int | None,
    *pairs: tuple[ConditionType, ConditionStatus, Reason, str],
) -> list[Condition]:
    now = _now()
    for type_, status, reason, message in pairs:
        conditions = _set(
            conditions,
            type_=type_,
            status=status,
            reason=reason,
            message=message,
            observed_generation=generation,
            now=now,
        )
    return conditions


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
        return


async def _judge(
    context: OperatorContext, mv: ModelVersion, body: kopf.Body, job: Mapping[str, Any]
) -> None:
    pods = await context.kube.list(
        "v1", "Pod", mv.namespace, labels={"job-name": job["metadata"]["name"]}
    )
    report = read_report(pods)
    try:
        gates = recorded_gates(job, mv.spec.gates)
    except ValidationError as error:
        gates, report = Gates(), f"the gates recorded on the validation Job do not parse: {error}"
    if isinstance(report, str):
        results = [GateResult(gate="validation", passed=False, message=report)]
    else:
        results = evaluate_gates(
            gates,
            metrics=mv.spec.metrics,
            primary_metric=mv.spec.primary_metric.name,
            report=report,
            champions=recorded_champions(job),
        )
    phase = verdict(results, require_approval=gates.require_approval, approval=None)
    failed = [r for r in results if not r.passed]
    if phase is ModelVersionPhase.REJECTED:
        message = "; ".join(f"{r.gate}: {r.message}" for r in failed)[:2000]
        pairs = (
            (ConditionType.VALIDATED, ConditionStatus.FALSE,
             Reason.ARTIFACT_INVALID if _artifact_failed(results) else Reason.GATE_FAILED, message),
            (ConditionType.READY, ConditionStatus.FALSE, Reason.GATE_FAILED, "rejected: " + message),
        )  # fmt: skip
    elif phase is ModelVersionPhase.AWAITING_APPROVAL:
        message = f"every gate passed; waiting for approval (annotate {APPROVED_BY_ANNOTATION}, or mlops approve)"
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
    status = ModelVersionStatus(
        observed_generation=mv.generation,
        phase=phase,
        gate_results=results,
        validated_at=_now(),
        conditions=_conditions(current_conditions(body), mv.generation, *pairs),
    )
    await _write(context.kube, mv, status)
    kind = "Warning" if phase is ModelVersionPhase.REJECTED else "Normal"
    _post(body, type=kind, reason=pairs[0][2].value, message=message[:1000])


def _artifact_failed(results: list[GateResult]) -> bool:
    """Whether an artifact check (not a metric gate) failed."""
    return any(not r.passed and r.gate in _ARTIFACT_CHECKS for r in results)


async def _approve(
    context: OperatorContext, mv: ModelVersion, body: kopf.Body, status: ModelVersionStatus
) -> None:
    # Read afresh: the annotation is the only change, and it must not wait for a spec event.
    stored = await context.kube.get(API_VERSION, _KIND, mv.name, mv.namespace)
    approver = (stored["metadata"].get("annotations") or {}).get(APPROVED_BY_ANNOTATION)
    if not approver:
        return
    approval = Approval(by=approver, at=_now())
    message = f"approved by {approver}"
    status = status.model_copy(
        update={
            "phase": ModelVersionPhase.VALIDATED,
            "approval": approval,
            "conditions": _conditions(
                current_conditions(body), mv.generation,
                (ConditionType.VALIDATED, ConditionStatus.TRUE, Reason.APPROVED, message),
                (ConditionType.READY, ConditionStatus.TRUE, Reason.APPROVED, message),
            ),
        }
    )  # fmt: skip
    await _write(context.kube, mv, status)
    _post(body, type="Normal", reason=Reason.APPROVED.value, message=message)


def _status(body: kopf.Body) -> ModelVersionStatus:
    """The stored status (`parse` leaves it out); one that does not parse starts over."""
    try:
        return ModelVersionStatus.model_validate(dict(body.get("status") or {}))
    except ValidationError:
        return ModelVersionStatus()


@kopf.timer(GROUP, VERSION, "modelversions", interval=2.0, when=_unfinished)
async def validate_model_version(
    body: kopf.Body, patch: kopf.Patch, memo: OperatorContext, **_: Any
) -> None:
    """Move a ModelVersion one step through validation (see the module docstring)."""
    mv = parse(ModelVersion, body, patch, ConditionType.VALIDATED)
    status = _status(body)
    if status.phase is ModelVersionPhase.AWAITING_APPROVAL:
        await _approve(memo, mv, body, status)
        return
    try:
        job = await memo.kube.get("batch/v1", "Job", validation_job_name(mv.name), mv.namespace)
    except NotFound:
        await _start(memo, mv, body, status)
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
