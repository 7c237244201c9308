"""Whether a DriftPolicy retrains now: a chain of pure checks over what was gathered.

The controller gathers (I/O) the readings of every trigger over the window (each
measured and judged in `decisions.triggers`), the TrainingJobs the policy created and
the time; `evaluate` then updates each trigger's run of breaches and walks the chain,
cert-manager style. The first check that holds the retrain back names the outcome:

1. **source reachable** — no reading means no decision: a data trigger never fires on
   missing data (the schedule, which needs no data, still may);
2. **enough samples** — a trigger with fewer samples than its ``minSamples`` is not judged
   and its run of breaches restarts;
3. **threshold breached** — some trigger crossed its threshold, or the schedule fell due;
4. **hysteresis** — a data trigger must breach on ``consecutiveBreaches`` evaluations in a
   row, and one run of breaches (a drift episode) retrains at most once: a value
   flapping around the threshold restarts the run, a value staying above it does not
   ask again after its retrain;
5. **cooldown elapsed** since the last retrain;
6. **budget left** — fewer than ``budget.count`` retrains in the sliding ``budget.period``;
7. **no retrain in flight** — at most one retrain of this policy at a time: its TrainingJob
   still running, or the version it made still being rolled out on the watched deployment
   (the remedy is on its way; the champion's readings will not change before it lands);
8. **action** — ``Alert`` reports and stops here; ``Retrain`` creates the TrainingJob.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from mlops_operator.api.conditions import Reason
from mlops_operator.api.driftpolicy import DriftAction, DriftPolicySpec, TriggerState
from mlops_operator.api.durations import parse_duration
from mlops_operator.api.gates import ComparisonOp
from mlops_operator.api.schedules import CronSchedule
from mlops_operator.decisions.triggers import Reading, breached

__all__ = [
    "SCHEDULE",
    "Decision",
    "Evaluation",
    "Retrain",
    "evaluate",
    "headline",
    "schedule_problem",
    "seconds_until_due",
]

SCHEDULE = "schedule"
"""Name of the schedule trigger in status."""


@dataclass(frozen=True)
class Retrain:
    """A TrainingJob this policy created: when, and whether it is still running."""

    name: str
    created: datetime
    finished: bool
    model_version: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class Evaluation:
    """Everything `evaluate` decides from; the controller gathers it."""

    spec: DriftPolicySpec
    now: datetime
    readings: Sequence[Reading] | None
    """None when the source did not answer (`source_error` says why)."""
    previous: Sequence[TriggerState] = ()
    last_evaluation: datetime | None = None
    """The previous evaluation, or the policy's creation for the first one."""
    retrains: Sequence[Retrain] = ()
    source_error: str | None = None
    rolling_out: str | None = None
    """The ModelVersion the watched deployment is rolling out as its challenger, if any."""
    unrunnable: str | None = None
    """Why some triggers cannot be measured at all with this configuration (reported as such)."""


@dataclass(frozen=True)
class Decision:
    """The outcome: new trigger states, whether to retrain, and why."""

    triggers: list[TriggerState]
    retrain: bool
    reason: Reason
    message: str
    fired: list[str]
    """Triggers that ask for a retrain at this evaluation (after hysteresis)."""
    breached: list[str]
    """Triggers above their threshold at this evaluation (before hysteresis)."""
    source_reachable: bool
    retrains_in_period: int
    headline: TriggerState | None
    """The trigger closest to firing (`headline`)."""
    schedule_error: str | None = None
    """Why ``triggers.schedule`` cannot be used, when it cannot (`schedule_problem`)."""
    unrunnable: str | None = None
    """Why some triggers cannot be measured with this configuration (from the evaluation)."""


def _next_state(reading: Reading, previous: TriggerState | None, now: datetime) -> TriggerState:
    hit = breached(reading)
    run = (previous.consecutive if previous else 0) + 1 if hit else 0
    since = (previous.since if previous and previous.consecutive else None) or now
    message = reading.message
    if not reading.enough_samples:
        message = f"{reading.samples or 0} samples in the window; {reading.min_samples} needed"
        message += f". {reading.message}" if reading.message else ""
    return TriggerState(
        name=reading.name,
        value=reading.value,
        threshold=reading.threshold,
        fired=hit,
        consecutive=run,
        since=since if hit else None,
        samples=reading.samples,
        coverage=reading.coverage,
        message=message[:1024],
    )


def schedule_problem(expression: str | None, now: datetime) -> str | None:
    """Why `expression` cannot be used as a schedule (None when it can, or is unset).

    The API server admits only well-formed expressions; what its pattern cannot see (a
    reversed range, a date that never comes) is found here.
    """
    if expression is None:
        return None
    try:
        CronSchedule.parse(expression).next_after(now)
    except ValueError as error:
        return f"spec.triggers.schedule {expression!r}: {error}"
    return None


def seconds_until_due(spec: DriftPolicySpec, now: datetime) -> float | None:
    """Seconds from `now` to the schedule's next occurrence; None without a usable schedule.

    The daemon sleeps no longer than this, so a schedule fires at its time and not up to an
    ``interval`` later (an evaluation finds an occurrence since the one before it).
    """
    if spec.triggers.schedule is None:
        return None
    try:
        upcoming = CronSchedule.parse(spec.triggers.schedule).next_after(now)
    except ValueError:
        return None  # never comes: `schedule_problem` reports it
    return (upcoming - now).total_seconds()


def _schedule_state(spec: DriftPolicySpec, start: datetime, now: datetime) -> TriggerState | None:
    if spec.triggers.schedule is None or schedule_problem(spec.triggers.schedule, now):
        return None
    schedule = CronSchedule.parse(spec.triggers.schedule)
    due = schedule.first_between(start, now)
    upcoming = schedule.next_after(now)
    message = f"due at {due.isoformat()}" if due else "not due"
    return TriggerState(
        name=SCHEDULE,
        fired=due is not None,
        consecutive=1 if due else 0,
        since=due,
        message=f"{message}; next at {upcoming.isoformat()}",
    )


def _episode_acted_on(state: TriggerState, retrains: Sequence[Retrain]) -> bool:
    # A retrain created during the current run of breaches already answered this episode.
    return state.since is not None and any(r.created >= state.since for r in retrains)


def _states(evaluation: Evaluation) -> list[TriggerState]:
    previous = {s.name: s for s in evaluation.previous}
    if evaluation.readings is None:
        # Unknown is not "below the threshold": runs are kept as they were, not extended.
        kept = [s for s in evaluation.previous if s.name != SCHEDULE]
        note = f"not measured: {evaluation.source_error}"[:1024]
        return [s.model_copy(update={"fired": False, "message": note}) for s in kept]
    return [_next_state(r, previous.get(r.name), evaluation.now) for r in evaluation.readings]


def evaluate(evaluation: Evaluation) -> Decision:
    """Walk the chain (module docstring) and return the decision with the new trigger states."""
    spec, now = evaluation.spec, evaluation.now
    states = _states(evaluation)
    start = evaluation.last_evaluation or now - timedelta(seconds=spec.interval_seconds)
    schedule = _schedule_state(spec, start, now)
    if schedule is not None:
        states.append(schedule)

    period = timedelta(seconds=parse_duration(spec.budget.period))
    in_period = [r for r in evaluation.retrains if r.created > now - period]
    was_breached = [s.name for s in states if s.fired]
    fired = [
        s.name
        for s in states
        if s.fired
        and (s.name == SCHEDULE or s.consecutive >= spec.consecutive_breaches)
        and not (s.name != SCHEDULE and _episode_acted_on(s, evaluation.retrains))
    ]

    def decide(retrain: bool, reason: Reason, message: str) -> Decision:
        return Decision(
            triggers=states,
            retrain=retrain,
            reason=reason,
            message=message,
            fired=fired,
            breached=was_breached,
            source_reachable=evaluation.readings is not None,
            retrains_in_period=len(in_period),
            headline=headline(states, evaluation.readings or ()),
            schedule_error=schedule_problem(spec.triggers.schedule, now),
            unrunnable=evaluation.unrunnable,
        )

    outcome = _blocked(evaluation, states, fired, in_period)
    if outcome is not None:
        return decide(False, *outcome)
    summary = _describe(states, fired)
    if spec.action is DriftAction.ALERT:
        return decide(False, Reason.DRIFT_DETECTED, f"{summary}; action is Alert: no retrain")
    return decide(True, Reason.RETRAIN_TRIGGERED, summary)


def _blocked(
    evaluation: Evaluation,
    states: Sequence[TriggerState],
    fired: Sequence[str],
    in_period: Sequence[Retrain],
) -> tuple[Reason, str] | None:
    """The first check of the chain that holds the retrain back, as (reason, message)."""
    spec, now = evaluation.spec, evaluation.now
    if evaluation.readings is None and SCHEDULE not in fired:
        return Reason.SOURCE_UNREACHABLE, f"no decision: {evaluation.source_error}"
    readings = evaluation.readings or []
    if readings and not any(r.enough_samples for r in readings) and SCHEDULE not in fired:
        short = "; ".join(f"{s.name}: {s.message}" for s in states if s.name != SCHEDULE)
        return Reason.INSUFFICIENT_SAMPLES, f"too few samples to judge ({short})"
    if not any(s.fired for s in states):
        return Reason.NO_DRIFT, "every trigger is within its threshold"
    if not fired:
        return Reason.DRIFT_DETECTED, _hysteresis_message(spec, states, evaluation.retrains)
    cooldown = timedelta(seconds=parse_duration(spec.cooldown))
    last = max((r.created for r in evaluation.retrains), default=None)
    if last is not None and now - last < cooldown:
        return (
            Reason.COOLDOWN,
            (
                f"{_describe(states, fired)}; the last retrain was at {last.isoformat()}, within"
                f" the cooldown of {spec.cooldown} (until {(last + cooldown).isoformat()})"
            ),
        )
    if len(in_period) >= spec.budget.count:
        return (
            Reason.BUDGET_EXHAUSTED,
            (
                f"{_describe(states, fired)}; {len(in_period)} retrains in the last"
                f" {spec.budget.period}, the budget allows {spec.budget.count}"
            ),
        )
    running = [r.name for r in evaluation.retrains if not r.finished]
    if running:
        return (
            Reason.RETRAIN_RUNNING,
            f"{_describe(states, fired)}; TrainingJob {', '.join(running)} is still running",
        )
    rolling = [r.name for r in evaluation.retrains
               if r.model_version is not None and r.model_version == evaluation.rolling_out]  # fmt: skip
    if rolling:
        return (
            Reason.RETRAIN_RUNNING,
            (
                f"{_describe(states, fired)}; {evaluation.rolling_out}, retrained by TrainingJob"
                f" {rolling[0]}, is still being rolled out: its outcome first"
            ),
        )
    return None


def _hysteresis_message(
    spec: DriftPolicySpec, states: Sequence[TriggerState], retrains: Sequence[Retrain]
) -> str:
    parts = []
    for state in states:
        if not state.fired:
            continue
        if _episode_acted_on(state, retrains):
            parts.append(f"{state.name} already retrained in this episode (since {state.since})")
        else:
            parts.append(
                f"{state.name} breached {state.consecutive} of {spec.consecutive_breaches}"
                " evaluations in a row"
            )
    return "drift detected, waiting: " + "; ".join(parts)


def _describe(states: Sequence[TriggerState], names: Sequence[str]) -> str:
    by_name = {s.name: s for s in states}
    parts = []
    for name in names:
        state = by_name[name]
        if state.value is None:
            parts.append(f"{name} ({state.message})" if state.message else name)
        else:
            parts.append(f"{name} = {state.value:.4g} (threshold {state.threshold:.4g})")
    return "triggered by " + ", ".join(parts)


def headline(states: Sequence[TriggerState], readings: Sequence[Reading]) -> TriggerState | None:
    """The trigger closest to firing: the largest value relative to its threshold.

    For floors (a trigger breached below its threshold, like accuracy) closeness is
    threshold / value; a trigger without a value (the schedule) counts only when due.
    """
    floors = {r.name for r in readings if r.op in (ComparisonOp.LT, ComparisonOp.LE)}

    def closeness(state: TriggerState) -> float:
        if state.value is None or state.threshold is None:
            return 1.0 if state.fired else -1.0
        if state.name in floors:
            return state.threshold / state.value if state.value > 0 else float("inf")
        return state.value / state.threshold if state.threshold else 0.0

    candidates = [s for s in states if s.value is not None or s.fired]
    return max(candidates, key=closeness, default=None)
