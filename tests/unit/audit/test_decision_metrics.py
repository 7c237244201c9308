"""Decision counters: each recorded decision counted once, under docs/metrics.md's names and labels.

Aspects: only entries new to the written history count (a re-run writing the
same history counts nothing); Promote is a promotion, Rollback and Abort are
rollbacks by reason, Deploy is neither; the Rollback finishing a floor breach is
not a second rollback; a retrain is counted under its first fired trigger.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mlops_operator.api.modeldeployment import HistoryAction, HistoryEntry
from mlops_operator.runtime import metrics

T0 = datetime(2025, 3, 4, 14, 0, tzinfo=UTC)
NS = "unit-decisions"


def _entry(minute: int, action: HistoryAction, version: int, reason: str) -> HistoryEntry:
    return HistoryEntry(
        version=version, time=T0 + timedelta(minutes=minute), action=action, reason=reason
    )


def _value(name: str, deployment: str, **labels: str) -> float:
    sample = metrics.REGISTRY.get_sample_value(
        name, {"model_namespace": NS, "model": "iris", "deployment": deployment, **labels}
    )
    return sample or 0.0


def test_new_entries_are_counted_once_by_action() -> None:
    deploy = _entry(0, HistoryAction.DEPLOY, 1, "RolloutStarted")
    promote = _entry(1, HistoryAction.PROMOTE, 2, "Promoted")
    abort = _entry(2, HistoryAction.ABORT, 3, "AnalysisFailed")
    manual = _entry(3, HistoryAction.ROLLBACK, 1, "RolledBack")
    history: list[HistoryEntry] = []
    for entry in (deploy, promote, abort, manual):
        after = [entry, *history]
        metrics.count_deployment_decisions(NS, "iris", "a", history, after)
        metrics.count_deployment_decisions(NS, "iris", "a", after, after)  # a re-run
        history = after
    assert _value("mlops_promotions_total", "a") == 1
    assert _value("mlops_rollbacks_total", "a", reason="AnalysisFailed") == 1
    assert _value("mlops_rollbacks_total", "a", reason="RolledBack") == 1


def test_the_restore_after_a_floor_breach_is_the_same_rollback() -> None:
    breach = _entry(5, HistoryAction.ABORT, 2, "FloorBreached")
    restore = _entry(6, HistoryAction.ROLLBACK, 1, "RolledBack")
    older = [_entry(1, HistoryAction.PROMOTE, 2, "Promoted")]
    metrics.count_deployment_decisions(NS, "iris", "b", older, [breach, *older])
    metrics.count_deployment_decisions(NS, "iris", "b", [breach, *older], [restore, breach, *older])
    assert _value("mlops_rollbacks_total", "b", reason="FloorBreached") == 1
    assert _value("mlops_rollbacks_total", "b", reason="RolledBack") == 0


def test_a_retrain_is_counted_under_its_first_fired_trigger() -> None:
    def value(trigger: str) -> float:
        labels = {"model_namespace": NS, "model": "iris", "policy": "p", "trigger": trigger}
        return metrics.REGISTRY.get_sample_value("mlops_retrains_total", labels) or 0.0

    metrics.count_retrain(NS, "iris", "p", ["featureDrift", "accuracy"])
    metrics.count_retrain(NS, "iris", "p", [])
    assert value("featureDrift") == 1
    assert value("accuracy") == 0
    assert value("unknown") == 1
