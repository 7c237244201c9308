"""The DriftPolicy decision chain: one test per check, and their order.

Aspects: source unreachable (no retrain on missing data, runs kept), too few samples, no
breach, hysteresis (N breaches in a row; a flapping value never retrains; one retrain per
episode), cooldown, budget over a sliding period, one retrain at a time (its version's
rollout included), Alert, the schedule (due once, cooldown still applies, needs no data),
and the chain's order when several checks would hold.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mlops_operator.api.conditions import Reason
from mlops_operator.api.driftpolicy import DriftPolicySpec, TriggerState
from mlops_operator.api.gates import ComparisonOp
from mlops_operator.decisions.drift import (
    Decision,
    Evaluation,
    Retrain,
    evaluate,
    seconds_until_due,
)
from mlops_operator.decisions.triggers import Reading

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
INTERVAL = timedelta(seconds=30)


def spec(**changes: Any) -> DriftPolicySpec:
    base: dict[str, Any] = {
        "deployment": "iris",
        "interval": "30s",
        "window": "1m",
        "cooldown": "10m",
        "consecutiveBreaches": 2,
        "budget": {"count": 2, "period": "1h"},
        "triggers": {"predictionDrift": {"psiThreshold": 0.25, "minSamples": 50}},
        "retrain": {
            "template": {
                "modelName": "iris",
                "target": "target",
                "estimator": {"name": "LogisticRegression"},
                "dataset": {"uri": "sklearn://iris"},
            }
        },
    }
    return DriftPolicySpec.model_validate(base | changes)


def psi_reading(value: float | None, samples: int = 100) -> Reading:
    return Reading("predictionDrift", value, 0.25, ComparisonOp.GE, samples=samples, min_samples=50)


def run(
    values: list[float | None],
    policy: DriftPolicySpec | None = None,
    retrains: list[Retrain] | None = None,
) -> list[Decision]:
    """Evaluate `values` one interval apart, carrying the states and the retrains created."""
    policy = policy or spec()
    made = list(retrains or [])
    states: list[TriggerState] = []
    decisions = []
    for index, value in enumerate(values):
        now = T0 + index * INTERVAL
        readings = None if value is None else [psi_reading(value)]
        decision = evaluate(
            Evaluation(
                spec=policy,
                now=now,
                readings=readings,
                previous=states,
                last_evaluation=now - INTERVAL,
                retrains=made,
                source_error="connection refused" if value is None else None,
            )
        )
        if decision.retrain:
            made.append(Retrain(f"r{index}", now, finished=True))
        states = decision.triggers
        decisions.append(decision)
    return decisions


def test_source_unreachable_never_retrains_and_keeps_the_run() -> None:
    decisions = run([0.5, None, None, 0.5])
    assert [d.reason for d in decisions[:3]] == [
        Reason.DRIFT_DETECTED,
        Reason.SOURCE_UNREACHABLE,
        Reason.SOURCE_UNREACHABLE,
    ]
    assert not any(d.retrain for d in decisions[:3])
    assert not decisions[1].source_reachable
    assert "connection refused" in decisions[1].message
    assert decisions[1].triggers[0].consecutive == 1  # kept, not extended, not reset
    assert decisions[3].retrain  # the second breach in a row once the source is back


def test_too_few_samples_is_not_judged_and_restarts_the_run() -> None:
    policy = spec()
    first = evaluate(Evaluation(policy, T0, [psi_reading(0.9)], last_evaluation=T0 - INTERVAL))
    second = evaluate(
        Evaluation(policy, T0 + INTERVAL, [psi_reading(0.9, samples=10)], first.triggers)
    )
    assert second.reason is Reason.INSUFFICIENT_SAMPLES
    assert "10 samples in the window; 50 needed" in second.message
    assert second.triggers[0].consecutive == 0
    assert not second.retrain


def test_no_breach_is_no_drift() -> None:
    (decision,) = run([0.1])
    assert (decision.reason, decision.retrain, decision.breached) == (Reason.NO_DRIFT, False, [])


def test_hysteresis_needs_consecutive_breaches() -> None:
    decisions = run([0.3, 0.3])
    assert decisions[0].reason is Reason.DRIFT_DETECTED
    assert "breached 1 of 2 evaluations in a row" in decisions[0].message
    assert decisions[1].retrain
    assert decisions[1].reason is Reason.RETRAIN_TRIGGERED
    assert decisions[1].fired == ["predictionDrift"]


def test_a_value_flapping_around_the_threshold_never_retrains() -> None:
    decisions = run([0.26, 0.24, 0.26, 0.24, 0.26, 0.24])
    assert not any(d.retrain for d in decisions)


def test_one_episode_retrains_once_even_after_the_cooldown() -> None:
    # 40 evaluations of 30 s: 20 minutes of drift, twice the cooldown.
    decisions = run([0.6] * 40)
    assert sum(d.retrain for d in decisions) == 1
    assert "already retrained in this episode" in decisions[-1].message


def test_a_new_episode_after_the_cooldown_retrains_again() -> None:
    values = [0.6, 0.6] + [0.1] * 20 + [0.6, 0.6]
    decisions = run(values)
    assert [i for i, d in enumerate(decisions) if d.retrain] == [1, 23]


def test_cooldown_holds_a_new_episode_back() -> None:
    decisions = run([0.6, 0.6, 0.1, 0.6, 0.6])
    assert [d.retrain for d in decisions] == [False, True, False, False, False]
    assert decisions[4].reason is Reason.COOLDOWN
    assert "within the cooldown of 10m" in decisions[4].message


def test_budget_counts_retrains_in_the_sliding_period() -> None:
    earlier = [
        Retrain("a", T0 - timedelta(minutes=50), finished=True),
        Retrain("b", T0 - timedelta(minutes=40), finished=True),
    ]
    decisions = run([0.6, 0.6], retrains=earlier)
    assert decisions[1].reason is Reason.BUDGET_EXHAUSTED
    assert decisions[1].retrains_in_period == 2
    assert "2 retrains in the last 1h, the budget allows 2" in decisions[1].message
    outside = [Retrain("a", T0 - timedelta(minutes=61), finished=True), earlier[1]]
    assert run([0.6, 0.6], retrains=outside)[1].retrain


def test_one_retrain_at_a_time() -> None:
    running = [Retrain("busy", T0 - timedelta(minutes=30), finished=False)]
    decisions = run([0.6, 0.6], spec(budget={"count": 5, "period": "1h"}), running)
    assert decisions[1].reason is Reason.RETRAIN_RUNNING
    assert "TrainingJob busy is still running" in decisions[1].message


def test_a_retrained_version_in_rollout_holds_the_next_retrain() -> None:
    # v2 trained and is the deployment's challenger; the champion still breaches past the cooldown.
    made = [Retrain("r0", T0 - timedelta(minutes=30), finished=True, model_version="iris-v2")]
    policy = spec(consecutiveBreaches=1, budget={"count": 5, "period": "1h"})

    def decide(rolling_out: str | None) -> Decision:
        return evaluate(
            Evaluation(spec=policy, now=T0, readings=[psi_reading(0.6)], retrains=made,
                       rolling_out=rolling_out)
        )  # fmt: skip

    held = decide("iris-v2")
    assert not held.retrain
    assert held.reason is Reason.RETRAIN_RUNNING
    assert "iris-v2, retrained by TrainingJob r0, is still being rolled out" in held.message
    # Another challenger (a user's own rollout), or none: the retrain goes ahead.
    assert decide("iris-v7").retrain
    assert decide(None).retrain


def test_alert_only_reports() -> None:
    decisions = run([0.6, 0.6], spec(action="Alert"))
    assert decisions[1].reason is Reason.DRIFT_DETECTED
    assert not decisions[1].retrain
    assert "action is Alert" in decisions[1].message


def test_schedule_fires_once_when_due_without_data() -> None:
    policy = spec(triggers={"schedule": "*/5 * * * *"})
    before = T0 + timedelta(minutes=4, seconds=50)
    due = evaluate(Evaluation(policy, T0 + timedelta(minutes=5), [], last_evaluation=before))
    assert due.retrain
    assert due.fired == ["schedule"]
    assert "due at 2026-03-02T12:05:00+00:00" in due.triggers[0].message
    after = evaluate(
        Evaluation(
            policy,
            T0 + timedelta(minutes=5, seconds=30),
            [],
            due.triggers,
            T0 + timedelta(minutes=5),
        )
    )
    assert not after.retrain
    unreachable = evaluate(
        Evaluation(
            policy, T0 + timedelta(minutes=5), None, last_evaluation=before, source_error="down"
        )
    )
    assert unreachable.retrain


def test_the_daemon_sleeps_no_longer_than_the_next_occurrence() -> None:
    # The interval (5 minutes by default) no longer decides when a schedule is found.
    policy = spec(triggers={"schedule": "*/5 * * * *"})
    assert seconds_until_due(policy, T0 + timedelta(minutes=3, seconds=30)) == 90
    # Strictly after: at an occurrence, the next one.
    assert seconds_until_due(policy, T0 + timedelta(minutes=5)) == 300
    # No schedule, or one that never comes: the interval alone.
    assert seconds_until_due(spec(), T0) is None
    never = spec(triggers={"schedule": "0 0 30 2 *", "predictionDrift": {"minSamples": 50}})
    assert seconds_until_due(never, T0) is None


def test_schedule_respects_the_cooldown() -> None:
    policy = spec(triggers={"schedule": "*/5 * * * *"})
    recent = [Retrain("r", T0, finished=True)]
    decision = evaluate(
        Evaluation(
            policy,
            T0 + timedelta(minutes=5),
            [],
            last_evaluation=T0 + timedelta(minutes=4),
            retrains=recent,
        )
    )
    assert decision.reason is Reason.COOLDOWN


@pytest.mark.parametrize(
    ("retrains", "expected"),
    [
        # Running, over budget and in cooldown at once: cooldown is checked first.
        ([Retrain("a", T0 - timedelta(minutes=1), finished=False)] * 2, Reason.COOLDOWN),
        # Over budget and running: budget before running.
        ([Retrain("a", T0 - timedelta(minutes=30), finished=False)] * 2, Reason.BUDGET_EXHAUSTED),
    ],
)
def test_chain_order(retrains: list[Retrain], expected: Reason) -> None:
    assert run([0.6, 0.6], retrains=retrains)[1].reason is expected


def test_chain_order_source_before_samples_before_threshold() -> None:
    policy = spec()
    assert evaluate(Evaluation(policy, T0, None, source_error="x")).reason is (
        Reason.SOURCE_UNREACHABLE
    )
    low = [psi_reading(0.9, samples=1)]
    assert evaluate(Evaluation(policy, T0, low)).reason is Reason.INSUFFICIENT_SAMPLES


def test_headline_is_the_trigger_closest_to_firing() -> None:
    policy = spec(
        triggers={
            "predictionDrift": {"psiThreshold": 0.25, "minSamples": 1},
            "accuracy": {"floor": 0.9, "minSamples": 1},
        }
    )
    readings = [
        Reading("predictionDrift", 0.1, 0.25, ComparisonOp.GE, 10, 1),
        Reading("accuracy", 0.5, 0.9, ComparisonOp.LT, 10, 1),
    ]
    decision = evaluate(Evaluation(policy, T0, readings))
    assert decision.headline is not None
    assert decision.headline.name == "accuracy"


def test_a_schedule_that_never_fires_is_reported_and_the_data_triggers_still_decide() -> None:
    policy = spec(triggers={"schedule": "0 0 30 2 *", "predictionDrift": {"minSamples": 50}})
    decision = evaluate(
        Evaluation(spec=policy, now=T0, readings=[psi_reading(0.9)], last_evaluation=T0 - INTERVAL)
    )
    assert decision.schedule_error is not None
    assert "never fires" in decision.schedule_error
    assert [t.name for t in decision.triggers] == ["predictionDrift"]
    assert decision.triggers[0].fired


def test_an_unrunnable_configuration_is_carried_to_the_decision() -> None:
    decision = evaluate(
        Evaluation(spec=spec(), now=T0, readings=[psi_reading(0.1)], unrunnable="no Prometheus")
    )
    assert decision.unrunnable == "no Prometheus"
