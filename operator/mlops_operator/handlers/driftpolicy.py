"""The DriftPolicy controller: one Kopf daemon per policy evaluates it every ``interval``,
and at each time of its schedule.

A daemon rather than a ``kopf.timer``: a timer's interval is fixed when it is
registered, while each policy has its own. Each round gathers (`drift.gather`),
decides (`decisions.drift.evaluate`), creates the TrainingJob when the decision
says so (`resources.retraining`, a deterministic name per evaluation slot so a
crash never creates two), writes the status (`drift.status`), posts an Event
on a retrain and on each change of the source's reachability, counts a recorded
retrain (`runtime.metrics`) and hands it to the audit log (`handlers.audit`). A spec change
wakes the daemon at once. The daemon is the only writer of the status, except for
a spec the model refuses, which `parse` reports.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Any

import kopf
from pydantic import ValidationError

from mlops_operator.api.conditions import Condition, ConditionType, Reason, find_condition
from mlops_operator.api.driftpolicy import DriftPolicy, LastRetrain, TriggerState
from mlops_operator.api.events import Event
from mlops_operator.api.resource import API_VERSION, GROUP, VERSION
from mlops_operator.decisions.drift import (
    Decision,
    Evaluation,
    Retrain,
    evaluate,
    schedule_problem,
    seconds_until_due,
)
from mlops_operator.decisions.drift_status import (
    evaluated_status,
    halted_status,
    recorded_evaluations,
)
from mlops_operator.decisions.outbound import prometheus_refusal
from mlops_operator.handlers.audit import audit_retrain
from mlops_operator.handlers.context import OperatorContext
from mlops_operator.handlers.driftpolicy_gather import (
    Gatherer,
    TargetMissing,
    parse_time,
    unrunnable,
)
from mlops_operator.handlers.kit import now, post, write_status
from mlops_operator.handlers.reconciling import current_conditions, parse, reconciles
from mlops_operator.k8s import ApiError, Conflict
from mlops_operator.resources.retraining import build_retraining_job, retraining_job_name
from mlops_operator.runtime.metrics import count_retrain

__all__ = ["evaluate_drift_policy", "reconcile_drift_policy"]

log = logging.getLogger(__name__)

_PLURAL = DriftPolicy.crd.plural
_RETRY_SECONDS = 10.0
_REDECIDE_SECONDS = 1.0
"""How soon an evaluation whose status was dropped (decided from an old copy) is made again."""
_PAST_DUE_SECONDS = 0.5
"""How long after a schedule's occurrence, at least, the daemon wakes for it (up to a second
more: an evaluation's time is cut to whole seconds, and the wait is counted from the round's
start)."""


@reconciles(DriftPolicy)
async def reconcile_drift_policy(
    body: kopf.Body, patch: kopf.Patch, memo: OperatorContext, **_: Any
) -> None:
    """Check the spec (a refused one is reported and made permanent) and wake the daemon.

    What the API server admits but cannot work (a schedule that never fires, custom
    triggers without a Prometheus) is said at once in a Warning Event; the daemon, woken
    now, writes it into the `Ready` condition at its evaluation.
    """
    policy = parse(DriftPolicy, body, patch, ConditionType.READY)
    problems = [
        (Reason.INVALID_SCHEDULE, schedule_problem(policy.spec.triggers.schedule, now())),
        (Reason.PROMETHEUS_REQUIRED, unrunnable(policy, memo.settings.prometheus_url)),
    ]
    for reason, problem in problems:
        if problem:
            post(body, Event.warning(reason, problem))
    wakeup = memo.wakeups.get(body.metadata.uid or "")
    if wakeup is not None:
        wakeup.set()


@kopf.daemon(GROUP, VERSION, _PLURAL, cancellation_timeout=10.0)
async def evaluate_drift_policy(
    stopped: kopf.DaemonStopped, body: kopf.Body, memo: OperatorContext, **_: Any
) -> None:
    """Evaluate the policy every `spec.interval`, and at each time of its schedule, until it is
    deleted or the operator stops."""
    uid = body.metadata.uid or ""
    wakeup = memo.wakeups.setdefault(uid, asyncio.Event())
    settings = memo.settings
    gatherer = Gatherer(
        memo.kube,
        settings.prometheus_url,
        max_seconds=settings.fetch_timeout_seconds,
        max_bytes=settings.fetch_max_bytes,
    )
    try:
        while not stopped:
            wakeup.clear()
            delay = await _round(memo, body, gatherer)
            waiter = asyncio.ensure_future(wakeup.wait())
            try:
                await asyncio.wait(
                    [waiter, asyncio.ensure_future(stopped.wait(delay))],
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                waiter.cancel()
    finally:
        memo.wakeups.pop(uid, None)
        await gatherer.close()


async def _round(context: OperatorContext, body: kopf.Body, gatherer: Gatherer) -> float:
    """One evaluation; the seconds until the next one."""
    try:
        policy = DriftPolicy.model_validate({k: v for k, v in body.items() if k != "status"})
    except ValidationError:
        return _RETRY_SECONDS  # the reconcile handler reports it; wait for a fixed spec
    interval = policy.spec.interval_seconds
    started, at = time.monotonic(), now()
    try:
        recorded = await _evaluate(context, policy, body, gatherer, at)
    except ApiError as error:
        log.warning("DriftPolicy %s/%s: API error: %s", policy.namespace, policy.name, error)
        return min(interval, _RETRY_SECONDS)
    if not recorded:
        return min(interval, _REDECIDE_SECONDS)
    # The next occurrence after the time this evaluation looked up to, not after the round's
    # end: one that fell during the round is still ahead of it. Woken just after the
    # occurrence, the next evaluation finds it in (last evaluation, now].
    due = seconds_until_due(policy.spec, at)
    if due is None:
        return interval
    elapsed = time.monotonic() - started
    return max(0.0, min(interval, due - elapsed + _PAST_DUE_SECONDS))


async def _evaluate(
    context: OperatorContext,
    policy: DriftPolicy,
    body: kopf.Body,
    gatherer: Gatherer,
    at: datetime,
) -> bool:
    """One evaluation as of `at`; False when its status was dropped (`kit.write_status`): the
    policy changed since `body` was read, so the evaluation is made again from the new one."""
    conditions = current_conditions(body)
    if policy.spec.suspend:
        message = "spec.suspend is true: not evaluating"
        status = halted_status(policy, conditions, Reason.SUSPENDED, message, at)
        return await write_status(context.kube, body, status) is not None
    url = policy.spec.prometheus.url
    refusal = url and prometheus_refusal(url, context.settings.allowed_prometheus_urls)
    if refusal:
        # Nothing is fetched from a URL the platform did not allow: the tenant cannot point
        # the operator at an internal address (or a slow or huge answer) of their choosing.
        status = halted_status(policy, conditions, Reason.PROMETHEUS_NOT_ALLOWED, refusal, at)
        if await write_status(context.kube, body, status) is None:
            return False
        _report_halt(body, conditions, Reason.PROMETHEUS_NOT_ALLOWED, refusal)
        return True
    try:
        target = await gatherer.target(policy)
    except TargetMissing as error:
        status = halted_status(policy, conditions, Reason.TARGET_NOT_FOUND, str(error), at)
        return await write_status(context.kube, body, status) is not None
    gathered = await gatherer.readings(policy, target, at)
    for refused in gathered.refused_targets:
        post(body, Event.warning(Reason.SCRAPE_TARGET_REFUSED, refused))
    retrains = await gatherer.retrains(policy)
    previous_status = body.get("status") or {}
    last = previous_status.get("lastEvaluationTime") or body.metadata.get("creationTimestamp")
    decision = evaluate(
        Evaluation(
            spec=policy.spec,
            now=at,
            readings=gathered.readings,
            previous=[TriggerState.model_validate(t) for t in previous_status.get("triggers", [])],
            last_evaluation=parse_time(last) if last else None,
            retrains=retrains,
            source_error=gathered.source_error,
            rolling_out=((target.get("status") or {}).get("challenger") or {}).get("modelVersion"),
            unrunnable=unrunnable(policy, context.settings.prometheus_url),
        )
    )
    if decision.retrain:
        champion = (target.get("status") or {}).get("champion") or {}
        parent = champion.get("modelVersion")
        retrains.append(await _create_retrain(gatherer, policy, body, decision, at, parent))
    note = f"judging model_version {gathered.version}" if gathered.version else ""
    note += f"; {gathered.note}" if gathered.note else ""
    psi = next((r.details for r in gathered.readings or () if r.name == "featureDrift"), {})
    history = recorded_evaluations(previous_status.get("evaluations") or [], decision, at, psi)
    status = evaluated_status(policy, conditions, decision, retrains, at, note, history)
    if await write_status(context.kube, body, status) is None:
        return False
    _report_reachability(body, conditions, decision.source_reachable, decision.message)
    await _account(context, policy, target, previous_status, status, decision)
    return True


async def _account(
    context: OperatorContext,
    policy: DriftPolicy,
    target: dict[str, Any],
    before: dict[str, Any],
    after: dict[str, Any],
    decision: Decision,
) -> None:
    """Count a retrain the status write just recorded (once) and hand it to the audit log."""
    model = str(target.get("spec", {}).get("modelName", ""))
    latest = after.get("lastRetrain")
    retrain = LastRetrain.model_validate(latest) if latest else None
    previous = (before.get("lastRetrain") or {}).get("trainingJob")
    if retrain is not None and retrain.training_job != previous:
        count_retrain(policy.namespace, model, policy.name, decision.fired)
    await audit_retrain(context, policy, retrain, model)


async def _create_retrain(
    gatherer: Gatherer,
    policy: DriftPolicy,
    body: kopf.Body,
    decision: Decision,
    now: datetime,
    parent: str | None,
) -> Retrain:
    name = retraining_job_name(policy.name, now, policy.spec.interval_seconds)
    values = {t.name: t.value for t in decision.triggers if t.value is not None}
    reason = decision.message
    manifest = build_retraining_job(
        policy, name=name, reason=reason, values=values, parent_version=parent
    )
    try:
        created = await gatherer.kube.create(manifest)
    except Conflict:
        # Created by an earlier attempt in this slot (the operator crashed after creating it).
        created = await gatherer.kube.get(API_VERSION, "TrainingJob", name, policy.namespace)
    # Told when created, whatever becomes of this evaluation's status: the TrainingJob exists.
    post(body, Event.normal(Reason.RETRAIN_TRIGGERED, f"created TrainingJob {name}: {reason}"))
    return Retrain(
        name=name,
        created=parse_time(created["metadata"]["creationTimestamp"]),
        finished=False,
        reason=reason,
    )


def _report_halt(
    body: kopf.Body, conditions: list[Condition], reason: Reason, message: str
) -> None:
    """One Warning Event when the policy stops evaluating for `reason` (not on every round)."""
    before = find_condition(conditions, ConditionType.READY)
    if before is None or before.reason != reason.value:
        post(body, Event.warning(reason, message))


def _report_reachability(
    body: kopf.Body, conditions: list[Condition], reachable: bool, message: str
) -> None:
    before = find_condition(conditions, ConditionType.SOURCE_REACHABLE)
    was = before is None or before.status == "True"
    if was and not reachable:
        post(body, Event.warning(Reason.SOURCE_UNREACHABLE, message))
    elif not was and reachable:
        post(body, Event.normal(Reason.SOURCE_REACHABLE, "the metrics source answers again"))
