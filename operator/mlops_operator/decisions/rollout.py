"""What a ModelDeployment should serve next: the rollout as a pure state machine over its status.

Each tick the handler gathers the ModelVersions of the model, the readiness of
the serving Deployments and, when `analysis_window` says one is due, a
`Judgement` of the challenger's live metrics; `advance` returns the next status
and the Deployments that status implies. The status is written before anything
is applied, and the Deployments follow from the status alone, so an operator
killed at any line resumes where the status says: no step is skipped or repeated.

The states, per strategy (``R`` = ``spec.replicas``)::

    no champion ──▶ Deploy: the target becomes champion at once
    champion, new target ──▶ challenger
        Recreate / rollback ─ Promoting: both at R; when the challenger is ready, it is champion
        Canary ─ step i, weight w: the champion keeps R pods and sends exactly w % of the
                 requests to the challenger (ceil(R·w/100) pods, none of the Service's own
                 traffic); once both serve the step, hold `pause`, judging every `interval`:
                 passed ▶ after `pause`, next step (after the last: Promoting)
                 failed ▶ `failureLimit` failed intervals in a row withdraw it
        Shadow ─ challenger (1 pod) gets a mirror of `mirrorPercent` of the champion's
                 requests, none of the Service's; judged every `interval`; after
                 `shadow.duration`: passed ▶ Promoting · failed ▶ withdraw
    champion, no challenger, floors breached (Auto) ──▶ Promoting the previous champion (rollback)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from mlops_operator.api.conditions import Condition, ConditionStatus, ConditionType, Reason
from mlops_operator.api.conditions import set_condition as _set
from mlops_operator.api.durations import parse_duration
from mlops_operator.api.gates import Gates
from mlops_operator.api.modeldeployment import (
    Challenger,
    ChallengerPhase,
    Champion,
    HistoryAction,
    HistoryEntry,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    Promotion,
    RolloutStrategy,
)
from mlops_operator.api.modelversion import ModelVersionPhase
from mlops_operator.decisions.analysis import Judgement, Outcome
from mlops_operator.decisions.gates import metric_gate

__all__ = [
    "OPERATOR",
    "Candidate",
    "Event",
    "Plan",
    "Served",
    "advance",
    "analysis_window",
    "canary_replicas",
    "choose_target",
]

OPERATOR = "mlops-operator"
"""The actor recorded for the operator's own decisions."""

SHADOW_REPLICAS = 1
"""Pods of a shadowed challenger: it answers a mirror, and one pod shows its behaviour."""


@dataclass(frozen=True)
class Candidate:
    """A ModelVersion of the deployment's model, as far as choosing one goes."""

    name: str
    version: int
    phase: ModelVersionPhase
    metrics: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the ModelDeployment."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class Served:
    """One serving Deployment wanted: its version, pods, and whether the Service routes to it."""

    version: int
    model_version: str
    replicas: int
    traffic: bool = True


@dataclass(frozen=True)
class Plan:
    """The outcome of a tick: the status to record, then the Deployments to converge to."""

    status: ModelDeploymentStatus
    served: list[Served]
    mirror_to: Served | None = None
    """The challenger the champion mirrors its traffic to (shadow), if any."""
    canary_to: Served | None = None
    """The challenger that answers a share of the requests (canary), if any."""
    weights: Mapping[int, int] = field(default_factory=dict)
    """Percent of the requests each version answers (what a traffic router should split)."""
    events: list[Event] = field(default_factory=list)


def canary_replicas(replicas: int, weight: int) -> int:
    """Challenger pods for `weight` percent of the requests: ceil(R·w/100), at least one.

    The champion keeps its R pods: it takes every request and passes the challenger's
    share on (or a traffic router splits them), so the challenger needs pods for its
    share only.
    """
    return max(1, math.ceil(max(replicas, 1) * weight / 100))


def _passes(gates: Gates | None, candidate: Candidate) -> bool:
    if gates is None:
        return True
    return all(metric_gate(g, candidate.metrics).passed for g in gates.metrics)


def choose_target(
    spec: ModelDeploymentSpec, status: ModelDeploymentStatus, candidates: Sequence[Candidate]
) -> Candidate | None:
    """The version the deployment should move to, or None for "nothing new".

    Manual: the pinned version once Validated. Auto: the newest Validated version
    that passes the deployment's own metric gates and is newer than any version in
    the history, so a withdrawn or rolled-back version is never retried; a newer one is.
    Never a version whose artifact a serving pod refused (as the history records): its
    bytes are not the ones that were validated.
    """
    refused = {
        e.version
        for e in status.history
        if e.action is HistoryAction.ABORT and e.reason == Reason.ARTIFACT_REFUSED.value
    }
    validated = [
        c for c in candidates if c.phase is ModelVersionPhase.VALIDATED and c.version not in refused
    ]
    if spec.promotion is Promotion.MANUAL:
        return next((c for c in validated if c.version == spec.version), None)
    seen = [entry.version for entry in status.history]
    if status.champion is not None:
        seen.append(status.champion.version)
    if status.challenger is not None:
        seen.append(status.challenger.version)
    newest = max(seen, default=0)
    fresh = [c for c in validated if c.version > newest and _passes(spec.gates, c)]
    return max(fresh, key=lambda c: c.version, default=None)


def analysis_window(
    spec: ModelDeploymentSpec, status: ModelDeploymentStatus, now: datetime
) -> float | None:
    """Seconds of traffic to judge the challenger on, when a judgement is due now; else None.

    Due every ``analysis.interval`` of a step (or a shadow), over the traffic since the
    previous judgement, and once more when the step's hold is over if none was made since.
    """
    challenger = status.challenger
    if challenger is None or challenger.since is None:
        return None
    if challenger.phase not in (ChallengerPhase.CANARY, ChallengerPhase.SHADOWING):
        return None
    last = challenger.analyzed_at or challenger.since
    elapsed = (now - last).total_seconds()
    held_at = challenger.since + timedelta(seconds=_hold(spec, challenger))
    if elapsed >= parse_duration(spec.rollout.analysis.interval) or (
        now >= held_at and last < held_at
    ):
        return elapsed
    return None


def _hold(spec: ModelDeploymentSpec, challenger: Challenger) -> float:
    """How long the current step (or the shadow) lasts at least."""
    rollout = spec.rollout
    if challenger.phase is ChallengerPhase.SHADOWING:
        return parse_duration(rollout.shadow.duration if rollout.shadow else "30m")
    steps = rollout.canary.steps if rollout.canary else []
    return parse_duration(steps[challenger.step].pause) if challenger.step < len(steps) else 0.0


@dataclass
class _Tick:
    """The mutable working copy of one tick."""

    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus
    ready: Mapping[int, int]
    now: datetime
    generation: int | None
    actor: str
    events: list[Event] = field(default_factory=list)

    def record(
        self,
        action: HistoryAction,
        version: int,
        reason: Reason,
        message: str,
        evidence: Mapping[str, float] | None = None,
        *,
        actor: str = OPERATOR,
        warning: bool = False,
    ) -> None:
        entry = HistoryEntry(
            version=version,
            time=self.now,
            action=action,
            reason=reason.value,
            message=message[:1024],
            evidence={k: v for k, v in (evidence or {}).items() if math.isfinite(v)},
            actor=actor,
        )
        history = [entry, *self.status.history][: self.spec.history_limit]
        self.status = self.status.model_copy(update={"history": history})
        kind = "Warning" if warning else "Normal"
        self.events.append(Event(kind, reason.value, f"v{version}: {message}"))

    def set(self, **fields: object) -> None:
        self.status = self.status.model_copy(update=fields)

    def condition(
        self, type_: ConditionType, status: ConditionStatus, reason: Reason, message: str
    ) -> None:
        conditions: list[Condition] = _set(
            self.status.conditions,
            type_=type_,
            status=status,
            reason=reason,
            message=message,
            observed_generation=self.generation,
            now=self.now,
        )
        self.set(conditions=conditions)

    def is_ready(self, version: int, replicas: int) -> bool:
        return self.ready.get(version, 0) >= replicas


def _promote(tick: _Tick, challenger: Challenger, evidence: Mapping[str, float]) -> None:
    rollback = (
        tick.status.champion is not None and challenger.version < tick.status.champion.version
    )
    action = HistoryAction.ROLLBACK if rollback else HistoryAction.PROMOTE
    reason = Reason.ROLLED_BACK if rollback else Reason.PROMOTED
    # A manual rollback is the user's decision; a floor breach in Auto mode is the operator's.
    actor = tick.actor if rollback and tick.spec.promotion is Promotion.MANUAL else OPERATOR
    message = (
        f"rolled back to version {challenger.version}"
        if rollback
        else f"version {challenger.version} promoted to champion"
    )
    history = tick.status.history
    decided = bool(history) and (history[0].action, history[0].version) == (
        HistoryAction.PROMOTE,
        challenger.version,
    )
    if decided:
        # A passed shadow recorded the promotion with its evidence; this is the switch finishing.
        tick.events.append(Event("Normal", reason.value, f"v{challenger.version}: {message}"))
    else:
        tick.record(action, challenger.version, reason, message, evidence, actor=actor)
    tick.set(
        champion=Champion(
            version=challenger.version, model_version=challenger.model_version, since=tick.now
        ),
        challenger=None,
    )
    tick.condition(ConditionType.PROGRESSING, ConditionStatus.FALSE, reason, message)
    tick.condition(ConditionType.DEGRADED, ConditionStatus.FALSE, reason, message)


def _withdraw(tick: _Tick, challenger: Challenger, reason: Reason, judgement: Judgement) -> None:
    message = f"version {challenger.version} withdrawn: {judgement.message}"
    tick.record(
        HistoryAction.ABORT, challenger.version, reason, message, judgement.evidence, warning=True
    )
    tick.set(challenger=None)
    tick.condition(ConditionType.PROGRESSING, ConditionStatus.FALSE, reason, message)
    tick.condition(ConditionType.DEGRADED, ConditionStatus.TRUE, reason, message)


def _judge(tick: _Tick, challenger: Challenger, judgement: Judgement | None) -> None:
    """Act on the judgement of the current step's (or shadow's) window."""
    if judgement is None or judgement.outcome is Outcome.INCONCLUSIVE:
        if judgement is not None:
            tick.condition(
                ConditionType.PROGRESSING,
                ConditionStatus.TRUE,
                Reason.CANARY_STEP,
                f"version {challenger.version} waiting for traffic to judge: {judgement.message}",
            )
        return
    rollout = tick.spec.rollout
    if judgement.outcome is Outcome.FAILED:
        failed = challenger.failed_analyses + 1
        if failed < rollout.analysis.failure_limit:
            tick.set(
                challenger=challenger.model_copy(
                    update={"failed_analyses": failed, "analyzed_at": tick.now}
                )
            )
            return
        if rollout.auto_rollback:
            _withdraw(tick, challenger, Reason.ANALYSIS_FAILED, judgement)
            return
        paused = challenger.model_copy(
            update={"failed_analyses": failed, "phase": ChallengerPhase.PAUSED}
        )
        tick.set(challenger=paused)
        tick.condition(
            ConditionType.DEGRADED,
            ConditionStatus.TRUE,
            Reason.ANALYSIS_FAILED,
            f"version {challenger.version} failed analysis and is paused (autoRollback is off):"
            f" {judgement.message}",
        )
        return
    challenger = challenger.model_copy(update={"failed_analyses": 0, "analyzed_at": tick.now})
    assert challenger.since is not None  # judged only once its step began
    if (tick.now - challenger.since).total_seconds() < _hold(tick.spec, challenger):
        tick.set(challenger=challenger)  # passed an interval; the step's pause goes on
        return
    steps = rollout.canary.steps if rollout.canary else []
    if challenger.phase is ChallengerPhase.SHADOWING or challenger.step + 1 >= len(steps):
        # Passed: the decision is recorded now, with its evidence; the switch follows once the
        # challenger's pods take the Service's traffic (Promoting), so no request meets a
        # Service without ready pods.
        what = "shadow" if challenger.phase is ChallengerPhase.SHADOWING else "canary"
        tick.record(
            HistoryAction.PROMOTE,
            challenger.version,
            Reason.PROMOTED,
            f"{what} of version {challenger.version} passed ({judgement.message});"
            " switching traffic to it",
            judgement.evidence,
        )
        switched = challenger.model_copy(
            update={
                "phase": ChallengerPhase.PROMOTING,
                "weight": 100,
                "since": None,
                "analyzed_at": None,
            }
        )
        tick.set(challenger=switched)
        return
    following = challenger.step + 1
    tick.events.append(
        Event(
            "Normal",
            Reason.CANARY_STEP.value,
            f"v{challenger.version}: step {challenger.step} at {challenger.weight}% passed"
            f" ({judgement.message}); next {steps[following].weight}%",
        )
    )
    tick.set(
        challenger=challenger.model_copy(
            update={
                "step": following,
                "weight": steps[following].weight,
                "since": None,
                "analyzed_at": None,
                "failed_analyses": 0,
            }
        )
    )


def _start(tick: _Tick, champion: Champion, target: Candidate) -> None:
    strategy = tick.spec.rollout.strategy
    rollback = target.version < champion.version
    if rollback or strategy is RolloutStrategy.RECREATE:
        phase, weight = ChallengerPhase.PROMOTING, 100
    elif strategy is RolloutStrategy.SHADOW:
        phase, weight = ChallengerPhase.SHADOWING, 0
    else:
        phase = ChallengerPhase.CANARY
        weight = tick.spec.rollout.canary.steps[0].weight if tick.spec.rollout.canary else 100
    challenger = Challenger(
        version=target.version, model_version=target.name, weight=weight, step=0, phase=phase
    )
    tick.set(challenger=challenger)
    what = "rollback to" if rollback else f"{strategy.value} rollout of"
    message = f"{what} version {target.version} started (champion {champion.version})"
    tick.condition(ConditionType.PROGRESSING, ConditionStatus.TRUE, Reason.ROLLOUT_STARTED, message)
    tick.events.append(Event("Normal", Reason.ROLLOUT_STARTED.value, message))


def _progress(
    tick: _Tick, champion: Champion, challenger: Challenger, judgement: Judgement | None
) -> None:
    replicas = tick.spec.replicas
    if challenger.phase is ChallengerPhase.PROMOTING:
        if tick.is_ready(challenger.version, max(replicas, 1) if replicas else 0):
            _promote(tick, challenger, {})
        return
    if challenger.phase is ChallengerPhase.PAUSED:
        return
    wanted = (
        SHADOW_REPLICAS
        if challenger.phase is ChallengerPhase.SHADOWING
        else canary_replicas(replicas, challenger.weight)
    )
    if challenger.since is None:
        # A step's window opens once the champion's pods that mirror or forward this step's
        # share (a new template) serve, and the challenger's.
        sending = tick.is_ready(champion.version, max(replicas, 1))
        if sending and tick.is_ready(challenger.version, wanted):
            tick.set(challenger=challenger.model_copy(update={"since": tick.now}))
            what = (
                "shadowing"
                if challenger.phase is ChallengerPhase.SHADOWING
                else (f"at {challenger.weight}% (step {challenger.step})")
            )
            tick.condition(
                ConditionType.PROGRESSING,
                ConditionStatus.TRUE,
                Reason.CANARY_STEP,
                f"version {challenger.version} {what}",
            )
        return
    _judge(tick, challenger, judgement)


def _plan(spec: ModelDeploymentSpec, tick: _Tick) -> Plan:
    """The Deployments (and the traffic between them) the recorded status implies."""
    status = tick.status
    champion, challenger = status.champion, status.challenger
    replicas = spec.replicas
    plan = Plan(status=status, served=[], events=tick.events)
    if champion is None:
        return plan
    serving = Served(champion.version, champion.model_version, replicas)
    if challenger is None:
        return replace(plan, served=[serving], weights={champion.version: 100})
    if challenger.phase is ChallengerPhase.PROMOTING:
        # Both at R behind the Service until the challenger is ready and becomes champion.
        rising = Served(challenger.version, challenger.model_version, replicas)
        return replace(plan, served=[serving, rising], weights={champion.version: 100})
    if challenger.phase is ChallengerPhase.SHADOWING:
        shadow = Served(
            challenger.version, challenger.model_version, SHADOW_REPLICAS, traffic=False
        )
        return replace(
            plan, served=[serving, shadow], mirror_to=shadow, weights={champion.version: 100}
        )
    # Canary, or paused: the challenger answers exactly its weight, through the champion.
    canary = Served(
        challenger.version,
        challenger.model_version,
        canary_replicas(replicas, challenger.weight),
        traffic=False,
    )
    weights = {champion.version: 100 - challenger.weight, challenger.version: challenger.weight}
    return replace(plan, served=[serving, canary], canary_to=canary, weights=weights)


def _summarize(tick: _Tick, conflicts: Sequence[str]) -> None:
    champion = tick.status.champion
    if conflicts:
        tick.condition(
            ConditionType.READY, ConditionStatus.FALSE, Reason.NAME_CONFLICT, "; ".join(conflicts)
        )
        return
    if champion is None:
        tick.condition(
            ConditionType.READY,
            ConditionStatus.FALSE,
            Reason.NO_VERSION,
            f"no Validated version of model {tick.spec.model_name} to serve"
            + (f" (version {tick.spec.version} is pinned)" if tick.spec.version else ""),
        )
        return
    ready = tick.ready.get(champion.version, 0)
    if tick.status.challenger is not None and tick.status.challenger.phase in (
        ChallengerPhase.CANARY,
        ChallengerPhase.PROMOTING,
    ):
        ready += tick.ready.get(tick.status.challenger.version, 0)
    tick.set(replicas=tick.spec.replicas, ready_replicas=ready)
    if ready >= 1 or tick.spec.replicas == 0:
        tick.condition(
            ConditionType.READY,
            ConditionStatus.TRUE,
            Reason.AVAILABLE,
            f"version {champion.version} serving with {ready} ready pod(s)",
        )
    else:
        tick.condition(
            ConditionType.READY,
            ConditionStatus.FALSE,
            Reason.REPLICAS_UNAVAILABLE,
            f"no pod of version {champion.version} is ready yet",
        )


def advance(
    spec: ModelDeploymentSpec,
    status: ModelDeploymentStatus,
    *,
    candidates: Sequence[Candidate],
    ready: Mapping[int, int],
    now: datetime,
    generation: int | None = None,
    judgement: Judgement | None = None,
    floors: Judgement | None = None,
    actor: str = "spec",
    conflicts: Sequence[str] = (),
    refused: Mapping[int, str] | None = None,
) -> Plan:
    """The next status and the Deployments it implies.

    `ready` maps each version to the ready pods of its Deployment; `judgement` is
    the challenger's window when `analysis_window` said one was due; `floors` the
    champion's window against ``spec.rollbackFloors``; `actor` who changed the spec
    (recorded on manual rollbacks); `conflicts` why children could not be applied (names
    held by objects this deployment does not control), which make it not Ready; `refused`
    the versions whose serving pods refuse their artifact, and why: such a challenger is
    withdrawn and never tried again, a champion is reported Degraded.
    """
    refused = refused or {}
    tick = _Tick(spec, status, ready, now, generation, actor)
    target = choose_target(spec, status, candidates)
    champion, challenger = status.champion, status.challenger
    if champion is None:
        if target is not None:
            tick.set(
                champion=Champion(version=target.version, model_version=target.name, since=now)
            )
            tick.record(
                HistoryAction.DEPLOY, target.version, Reason.ROLLOUT_STARTED,
                f"version {target.version} deployed", actor=OPERATOR,
            )  # fmt: skip
    elif challenger is not None:
        superseded = spec.promotion is Promotion.MANUAL and spec.version != challenger.version
        withdrawn = not any(
            c.name == challenger.model_version and c.phase is ModelVersionPhase.VALIDATED
            for c in candidates
        )
        refusal = refused.get(challenger.version)
        if refusal is not None:
            # Its pods refuse the artifact (replaced after validation): traffic stays put.
            failed = Judgement(Outcome.FAILED, {}, message=f"its serving pod refused: {refusal}")
            _withdraw(tick, challenger, Reason.ARTIFACT_REFUSED, failed)
        elif superseded or withdrawn:
            why = (
                "the spec now asks for another version"
                if superseded
                else ("its ModelVersion is no longer Validated")
            )
            _withdraw(
                tick, challenger, Reason.ROLLED_BACK, Judgement(Outcome.FAILED, {}, message=why)
            )
        else:
            _progress(tick, champion, challenger, judgement)
    elif target is not None and target.version != champion.version:
        _start(tick, champion, target)
    elif _unvalidated(champion, candidates):
        message = f"version {champion.version} is no longer Validated (rejected, or its approval"
        message += " revoked)"
        _restore(tick, champion, candidates, Reason.VERSION_WITHDRAWN, message, {})
    elif floors is not None and floors.outcome is Outcome.FAILED:
        message = f"version {champion.version} breached a rollback floor: {floors.message}"
        _restore(tick, champion, candidates, Reason.FLOOR_BREACHED, message, floors.evidence)
    if tick.status.champion is not None and tick.status.champion.version in refused:
        _champion_refused(tick, refused[tick.status.champion.version])
    _summarize(tick, conflicts)
    return _plan(spec, tick)


def _previous(status: ModelDeploymentStatus, champion: Champion) -> HistoryEntry | None:
    return next(
        (
            e
            for e in status.history
            if e.version < champion.version
            and e.action in (HistoryAction.DEPLOY, HistoryAction.PROMOTE, HistoryAction.ROLLBACK)
        ),
        None,
    )


def _unvalidated(champion: Champion, candidates: Sequence[Candidate]) -> bool:
    """Whether the champion's ModelVersion is known and no longer Validated."""
    return any(
        c.name == champion.model_version and c.phase is not ModelVersionPhase.VALIDATED
        for c in candidates
    )


def _champion_refused(tick: _Tick, refusal: str) -> None:
    message = f"a pod of the champion refuses its artifact: {refusal}"
    degraded = next((c for c in tick.status.conditions if c.type == ConditionType.DEGRADED), None)
    if degraded is None or degraded.reason != Reason.ARTIFACT_REFUSED.value:
        tick.events.append(Event("Warning", Reason.ARTIFACT_REFUSED.value, message[:1024]))
    tick.condition(ConditionType.DEGRADED, ConditionStatus.TRUE, Reason.ARTIFACT_REFUSED, message)


def _restore(
    tick: _Tick,
    champion: Champion,
    candidates: Sequence[Candidate],
    reason: Reason,
    message: str,
    evidence: Mapping[str, float],
) -> None:
    """Replace the champion by the version that served before it, when that one is Validated."""
    if tick.spec.promotion is Promotion.MANUAL:
        tick.condition(ConditionType.DEGRADED, ConditionStatus.TRUE, reason,
                       message + "; the version is pinned (promotion Manual), so it stays")  # fmt: skip
        return
    previous = _previous(tick.status, champion)
    restore = next(
        (
            c
            for c in candidates
            if previous is not None
            and c.version == previous.version
            and c.phase is ModelVersionPhase.VALIDATED
        ),
        None,
    )
    if restore is None:
        tick.condition(ConditionType.DEGRADED, ConditionStatus.TRUE, reason,
                       message + "; no earlier Validated version to restore")  # fmt: skip
        return
    tick.events.append(Event("Warning", reason.value, message))
    tick.record(
        HistoryAction.ABORT, champion.version, reason, message, evidence, warning=True,
    )  # fmt: skip
    tick.set(
        challenger=Challenger(
            version=restore.version,
            model_version=restore.name,
            weight=100,
            phase=ChallengerPhase.PROMOTING,
        )
    )
    tick.condition(ConditionType.DEGRADED, ConditionStatus.TRUE, reason, message)
