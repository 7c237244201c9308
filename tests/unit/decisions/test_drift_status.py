"""`status.evaluations`: the last evaluations a DriftPolicy keeps for charts without Prometheus.

Aspects: the newest comes first with every measured trigger's value and the most drifted
features' PSI (rounded, at most eight features); unmeasured triggers are left out; at most
20 are kept; entries another operator version wrote that do not parse are dropped; the
status carries them, and they validate against the API model.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mlops_operator.api.conditions import Reason
from mlops_operator.api.driftpolicy import DriftPolicy, DriftPolicyStatus, TriggerState
from mlops_operator.decisions.drift import Decision
from mlops_operator.decisions.drift_status import (
    KEPT_EVALUATIONS,
    evaluated_status,
    recorded_evaluations,
)

T0 = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)


def decision() -> Decision:
    triggers = [
        TriggerState(name="featureDrift", value=0.666666, threshold=0.5, fired=True),
        TriggerState(name="accuracy", value=None, threshold=0.8, message="no feedback"),
    ]
    return Decision(
        triggers=triggers,
        retrain=False,
        reason=Reason.NO_DRIFT,
        message="m",
        fired=[],
        breached=[],
        source_reachable=True,
        retrains_in_period=0,
        headline=None,
    )


def test_the_newest_evaluation_comes_first_with_its_values() -> None:
    psi = {f"f{i}": i / 10 for i in range(12)}
    kept = recorded_evaluations([], decision(), T0, psi)
    assert kept == [
        {
            "time": "2026-12-01T10:00:00Z",
            "values": {"featureDrift": 0.6667},
            "featurePsi": {f"f{i}": round(i / 10, 4) for i in range(11, 3, -1)},
        }
    ]


def test_at_most_twenty_are_kept_and_foreign_entries_are_dropped() -> None:
    history: list[dict[str, object]] = [{"time": "not a time"}]
    for minute in range(KEPT_EVALUATIONS + 5):
        history = recorded_evaluations(history, decision(), T0 + timedelta(minutes=minute), {})
    assert len(history) == KEPT_EVALUATIONS
    assert history[0]["time"] == "2026-12-01T10:24:00Z"
    assert history[-1]["time"] == "2026-12-01T10:05:00Z"


def test_the_status_carries_them() -> None:
    policy = DriftPolicy.model_validate(
        {
            "apiVersion": "mlops.dev/v1alpha1",
            "kind": "DriftPolicy",
            "metadata": {"name": "p", "namespace": "ml", "generation": 1},
            "spec": {"deployment": "iris", "triggers": {"schedule": "@daily"}},
        }
    )
    kept = recorded_evaluations([], decision(), T0, {"a": 0.3})
    status = evaluated_status(policy, [], decision(), [], T0, "", kept)
    assert status["evaluations"] == kept
    assert DriftPolicyStatus.model_validate(status).evaluations[0].feature_psi == {"a": 0.3}
    # Left out, the stored ones stay as they are (a merge patch does not touch them).
    assert "evaluations" not in evaluated_status(policy, [], decision(), [], T0)
