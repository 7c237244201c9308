"""The rollout state machine, tick by tick: deploy, canary steps, promotion, withdrawal, rollback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mlops_operator.api.conditions import find_condition
from mlops_operator.api.modeldeployment import (
    ChallengerPhase,
    HistoryAction,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
)
from mlops_operator.api.modelversion import ModelVersionPhase
from mlops_operator.decisions.analysis import Judgement, Outcome
from mlops_operator.decisions.rollout import (
    Candidate,
    Plan,
    advance,
    analysis_window,
    canary_replicas,
)

T0 = datetime(2025, 3, 4, 14, 3, tzinfo=UTC)
PASS = Judgement(Outcome.PASSED, {"requests": 120.0, "errorRate": 0.0}, message="fine")
FAIL = Judgement(Outcome.FAILED, {"requests": 120.0, "p99LatencyMs": 900.0}, ("slow",), "slow")


def _spec(**extra: Any) -> ModelDeploymentSpec:
    body: dict[str, Any] = {"modelName": "iris", "replicas": 2} | extra
    return ModelDeploymentSpec.model_validate(body)


def _canary(failure_limit: int = 1, **extra: Any) -> ModelDeploymentSpec:
    steps = [{"weight": w, "pause": "10s"} for w in (10, 50, 100)]
    analysis = {"failureLimit": failure_limit, "interval": "5s"}
    return _spec(rollout={"strategy": "Canary", "canary": {"steps": steps}, "analysis": analysis},
                 **extra)  # fmt: skip


def _mv(version: int, phase: ModelVersionPhase = ModelVersionPhase.VALIDATED) -> Candidate:
    return Candidate(f"iris-v{version}", version, phase, {"accuracy": 0.9 + version / 100})


def _served(plan: Plan) -> dict[int, tuple[int, bool]]:
    return {s.version: (s.replicas, s.traffic) for s in plan.served}


def _reason(status: ModelDeploymentStatus, kind: str) -> tuple[str, str]:
    found = find_condition(status.conditions, kind)
    assert found is not None
    return found.status.value, found.reason


@pytest.mark.parametrize(
    ("replicas", "weight", "expected"),
    [(2, 10, 1), (2, 50, 1), (2, 100, 2), (10, 10, 1), (10, 25, 3), (1, 10, 1), (4, 90, 4),
     (0, 50, 1)],
)  # fmt: skip
def test_canary_replicas_round_up_to_at_least_one(
    replicas: int, weight: int, expected: int
) -> None:
    assert canary_replicas(replicas, weight) == expected


def test_first_version_is_deployed_at_once() -> None:
    plan = advance(_spec(), ModelDeploymentStatus(), candidates=[_mv(1)], ready={}, now=T0)
    assert plan.status.champion is not None
    assert plan.status.champion.version == 1
    assert [(e.action, e.version) for e in plan.status.history] == [(HistoryAction.DEPLOY, 1)]
    assert _served(plan) == {1: (2, True)}
    assert _reason(plan.status, "Ready") == ("False", "ReplicasUnavailable")
    ready = advance(_spec(), plan.status, candidates=[_mv(1)], ready={1: 2}, now=T0)
    assert _reason(ready.status, "Ready") == ("True", "Available")
    assert ready.status.ready_replicas == 2


def test_nothing_validated_means_nothing_served() -> None:
    plan = advance(
        _spec(), ModelDeploymentStatus(),
        candidates=[_mv(1, ModelVersionPhase.REJECTED), _mv(2, ModelVersionPhase.VALIDATING)],
        ready={}, now=T0,
    )  # fmt: skip
    assert plan.served == []
    assert _reason(plan.status, "Ready") == ("False", "NoVersion")


def _serving_v1(spec: ModelDeploymentSpec) -> ModelDeploymentStatus:
    first = advance(spec, ModelDeploymentStatus(), candidates=[_mv(1)], ready={}, now=T0)
    return advance(spec, first.status, candidates=[_mv(1)], ready={1: 2}, now=T0).status


def test_canary_walks_every_step_then_promotes() -> None:
    spec = _canary()
    mvs = [_mv(1), _mv(2)]
    now = T0 + timedelta(minutes=1)
    plan = advance(spec, _serving_v1(spec), candidates=mvs, ready={1: 2}, now=now)
    challenger = plan.status.challenger
    assert challenger is not None
    assert (challenger.version, challenger.step, challenger.weight) == (2, 0, 10)
    # The champion keeps its pods and sends exactly the weight to the challenger's one.
    assert _served(plan) == {1: (2, True), 2: (1, False)}
    assert plan.canary_to is not None
    assert (plan.canary_to.version, plan.weights) == (2, {1: 90, 2: 10})
    assert _reason(plan.status, "Progressing") == ("True", "RolloutStarted")
    status = plan.status
    for step, weight, pods in (
        (0, 10, {1: 2, 2: 1}),
        (1, 50, {1: 2, 2: 1}),
        (2, 100, {1: 2, 2: 2}),
    ):
        # Not ready yet: the step's clock does not start.
        status = advance(spec, status, candidates=mvs, ready={1: 2}, now=now).status
        assert status.challenger is not None
        assert status.challenger.since is None
        status = advance(spec, status, candidates=mvs, ready=pods, now=now).status
        assert status.challenger is not None
        assert (status.challenger.step, status.challenger.weight) == (step, weight)
        assert status.challenger.since == now
        # Judged every interval (5s) during the pause (10s); the step ends after the pause.
        assert analysis_window(spec, status, now + timedelta(seconds=4)) is None
        assert analysis_window(spec, status, now + timedelta(seconds=5)) == 5
        status = advance(spec, status, candidates=mvs, ready=pods,
                         now=now + timedelta(seconds=5), judgement=PASS).status  # fmt: skip
        assert status.challenger is not None
        assert (status.challenger.step, status.challenger.weight) == (step, weight)
        assert analysis_window(spec, status, now + timedelta(seconds=9)) is None
        now += timedelta(seconds=10)
        assert analysis_window(spec, status, now) == 5
        plan = advance(spec, status, candidates=mvs, ready=pods, now=now, judgement=PASS)
        status = plan.status
    # Passed: recorded now; the switch waits for the challenger's pods to take the Service's
    # traffic (its template changes), while the champion keeps serving.
    assert status.challenger is not None
    assert status.challenger.phase is ChallengerPhase.PROMOTING
    assert _served(plan) == {1: (2, True), 2: (2, True)}
    assert plan.canary_to is None
    plan = advance(spec, status, candidates=mvs, ready={1: 2, 2: 2}, now=now)
    status = plan.status
    assert status.challenger is None
    assert status.champion is not None
    assert (status.champion.version, status.champion.since) == (2, now)
    assert [(e.action, e.version) for e in status.history][:2] == [
        (HistoryAction.PROMOTE, 2),
        (HistoryAction.DEPLOY, 1),
    ]
    assert status.history[0].evidence == PASS.evidence
    assert _served(plan) == {2: (2, True)}
    assert _reason(status, "Progressing") == ("False", "Promoted")


def test_failed_analysis_withdraws_at_the_first_step_and_never_retries() -> None:
    spec = _canary()
    mvs = [_mv(1), _mv(2)]
    status = advance(spec, _serving_v1(spec), candidates=mvs, ready={1: 2}, now=T0).status
    status = advance(spec, status, candidates=mvs, ready={1: 2, 2: 1}, now=T0).status
    later = T0 + timedelta(seconds=5)
    plan = advance(spec, status, candidates=mvs, ready={1: 2, 2: 1}, now=later, judgement=FAIL)
    assert plan.status.challenger is None
    assert plan.status.champion is not None
    assert plan.status.champion.version == 1
    entry = plan.status.history[0]
    assert (entry.action, entry.version, entry.reason) == (HistoryAction.ABORT, 2, "AnalysisFailed")
    assert entry.evidence["p99LatencyMs"] == 900.0
    assert [e.type for e in plan.events] == ["Warning"]
    assert _served(plan) == {1: (2, True)}
    assert _reason(plan.status, "Degraded") == ("True", "AnalysisFailed")
    again = advance(spec, plan.status, candidates=mvs, ready={1: 2}, now=later)
    assert again.status.challenger is None
    # A newer version is tried.
    newer = advance(spec, plan.status, candidates=[*mvs, _mv(3)], ready={1: 2}, now=later)
    assert newer.status.challenger is not None
    assert newer.status.challenger.version == 3


def test_failures_below_the_limit_open_a_new_window() -> None:
    spec = _canary(failure_limit=2)
    mvs = [_mv(1), _mv(2)]
    status = advance(spec, _serving_v1(spec), candidates=mvs, ready={1: 2}, now=T0).status
    status = advance(spec, status, candidates=mvs, ready={1: 2, 2: 1}, now=T0).status
    later = T0 + timedelta(seconds=5)
    status = advance(
        spec, status, candidates=mvs, ready={1: 2, 2: 1}, now=later, judgement=FAIL
    ).status
    assert status.challenger is not None
    assert (status.challenger.failed_analyses, status.challenger.since) == (1, T0)
    assert status.challenger.analyzed_at == later
    # The next window is the next interval's traffic.
    assert analysis_window(spec, status, later + timedelta(seconds=5)) == 5
    inconclusive = Judgement(Outcome.INCONCLUSIVE, {"requests": 3.0}, message="3 requests")
    held = advance(
        spec, status, candidates=mvs, ready={1: 2, 2: 1}, now=later, judgement=inconclusive
    )
    assert held.status.challenger == status.challenger
    # A passed interval ends the run of failures.
    passed = advance(
        spec, status, candidates=mvs, ready={1: 2, 2: 1}, now=later, judgement=PASS
    ).status
    assert passed.challenger is not None
    assert passed.challenger.failed_analyses == 0


def test_the_analysis_interval_sets_how_often_a_step_is_judged() -> None:
    steps = [{"weight": 10, "pause": "10m"}, {"weight": 100, "pause": "10m"}]
    spec = _spec(rollout={"strategy": "Canary", "canary": {"steps": steps},
                          "analysis": {"interval": "1m", "failureLimit": 1}})  # fmt: skip
    mvs = [_mv(1), _mv(2)]
    status = advance(spec, _serving_v1(spec), candidates=mvs, ready={1: 2}, now=T0).status
    status = advance(spec, status, candidates=mvs, ready={1: 2, 2: 1}, now=T0).status
    assert analysis_window(spec, status, T0 + timedelta(seconds=59)) is None
    minute = T0 + timedelta(minutes=1)
    assert analysis_window(spec, status, minute) == 60
    # A failure a minute into a ten-minute step withdraws it then, not after the pause.
    plan = advance(spec, status, candidates=mvs, ready={1: 2, 2: 1}, now=minute, judgement=FAIL)
    assert plan.status.challenger is None
    assert plan.status.history[0].action is HistoryAction.ABORT
    slower = spec.model_copy(deep=True)
    slower.rollout.analysis.interval = "5m"
    assert analysis_window(slower, status, minute) is None


def test_manual_rollback_is_one_change_and_records_the_actor() -> None:
    spec = _spec(promotion="Manual", version=2)
    mvs = [_mv(1), _mv(2)]
    status = advance(spec, ModelDeploymentStatus(), candidates=mvs, ready={}, now=T0).status
    back = _spec(promotion="Manual", version=1)
    plan = advance(back, status, candidates=mvs, ready={2: 2}, now=T0, actor="alice")
    assert plan.status.challenger is not None
    assert plan.status.challenger.phase is ChallengerPhase.PROMOTING
    assert _served(plan) == {2: (2, True), 1: (2, True)}
    done = advance(back, plan.status, candidates=mvs, ready={2: 2, 1: 2}, now=T0, actor="alice")
    assert done.status.champion is not None
    assert done.status.champion.version == 1
    entry = done.status.history[0]
    assert (entry.action, entry.version, entry.actor) == (HistoryAction.ROLLBACK, 1, "alice")
    assert _served(done) == {1: (2, True)}


def test_a_pin_changed_mid_canary_withdraws_the_challenger() -> None:
    spec = _canary(promotion="Manual", version=1)
    mvs = [_mv(1), _mv(2)]
    status = advance(spec, ModelDeploymentStatus(), candidates=mvs, ready={}, now=T0).status
    up = _canary(promotion="Manual", version=2)
    status = advance(up, status, candidates=mvs, ready={1: 2}, now=T0).status
    assert status.challenger is not None
    plan = advance(spec, status, candidates=mvs, ready={1: 2, 2: 1}, now=T0)
    assert plan.status.challenger is None
    assert plan.status.history[0].action is HistoryAction.ABORT


def test_shadow_mirrors_then_switches() -> None:
    spec = _spec(rollout={"strategy": "Shadow", "shadow": {"duration": "20s"}})
    mvs = [_mv(1), _mv(2)]
    status = advance(spec, _serving_v1(spec), candidates=mvs, ready={1: 2}, now=T0).status
    # The champion's pods are being replaced by mirroring ones: the window does not open yet.
    waiting = advance(spec, status, candidates=mvs, ready={1: 1, 2: 1}, now=T0)
    assert waiting.status.challenger is not None
    assert waiting.status.challenger.since is None
    plan = advance(spec, status, candidates=mvs, ready={1: 2, 2: 1}, now=T0)
    assert plan.mirror_to is not None
    assert plan.mirror_to.version == 2
    assert _served(plan) == {1: (2, True), 2: (1, False)}
    later = T0 + timedelta(seconds=20)
    assert analysis_window(spec, plan.status, later) == 20
    switched = advance(
        spec, plan.status, candidates=mvs, ready={1: 2, 2: 1}, now=later, judgement=PASS
    )
    assert switched.status.challenger is not None
    assert switched.status.challenger.phase is ChallengerPhase.PROMOTING
    assert switched.mirror_to is None
    done = advance(spec, switched.status, candidates=mvs, ready={1: 2, 2: 2}, now=later)
    assert done.status.champion is not None
    assert done.status.champion.version == 2
    # One Promote entry, carrying the shadow's evidence.
    assert [(e.action, e.version) for e in done.status.history] == [
        (HistoryAction.PROMOTE, 2),
        (HistoryAction.DEPLOY, 1),
    ]
    assert done.status.history[0].evidence == PASS.evidence


def test_a_breached_floor_restores_the_previous_champion() -> None:
    spec = _spec(rollbackFloors={"maxErrorRate": 0.05})
    mvs = [_mv(1), _mv(2)]
    status = advance(spec, ModelDeploymentStatus(), candidates=[_mv(1)], ready={}, now=T0).status
    status = advance(spec, status, candidates=mvs, ready={1: 2}, now=T0).status
    status = advance(spec, status, candidates=mvs, ready={1: 2, 2: 2}, now=T0).status
    assert status.champion is not None
    assert status.champion.version == 2
    breach = Judgement(Outcome.FAILED, {"errorRate": 0.2}, ("errors",), "error rate 0.2")
    plan = advance(spec, status, candidates=mvs, ready={2: 2}, now=T0, floors=breach)
    assert plan.status.challenger is not None
    assert plan.status.challenger.version == 1
    assert _reason(plan.status, "Degraded") == ("True", "FloorBreached")
    done = advance(spec, plan.status, candidates=mvs, ready={2: 2, 1: 2}, now=T0)
    assert done.status.champion is not None
    assert done.status.champion.version == 1
    assert [(e.action, e.version) for e in done.status.history][:2] == [
        (HistoryAction.ROLLBACK, 1),
        (HistoryAction.ABORT, 2),
    ]
    assert done.status.history[0].actor == "mlops-operator"
    # v2 is not promoted again.
    assert (
        advance(spec, done.status, candidates=mvs, ready={1: 2}, now=T0).status.challenger is None
    )


def test_history_is_bounded_newest_first() -> None:
    spec = _spec(historyLimit=2)
    status = ModelDeploymentStatus()
    for version in (1, 2, 3):
        mvs = [_mv(v) for v in range(1, version + 1)]
        status = advance(spec, status, candidates=mvs, ready={version - 1: 2}, now=T0).status
        status = advance(spec, status, candidates=mvs, ready={version: 2}, now=T0).status
    assert [e.version for e in status.history] == [3, 2]


def _v2_rolling_out(spec: ModelDeploymentSpec) -> ModelDeploymentStatus:
    status = advance(spec, _serving_v1(spec), candidates=[_mv(1), _mv(2)], ready={1: 2}, now=T0)
    assert status.status.challenger is not None
    return status.status


@pytest.mark.parametrize("promotion", [{}, {"promotion": "Manual", "version": 2}])
def test_a_challenger_whose_pods_refuse_its_artifact_is_withdrawn_for_good(
    promotion: dict[str, Any],
) -> None:
    spec = _spec(**promotion)
    mvs = [_mv(1), _mv(2)]
    status = _v2_rolling_out(_spec()) if not promotion else advance(
        spec, _serving_v1(_spec()), candidates=mvs, ready={1: 2}, now=T0
    ).status  # fmt: skip
    refusal = "artifact refused: sha256 mismatch ... the ModelVersion registers ab12"
    plan = advance(spec, status, candidates=mvs, ready={1: 2, 2: 0}, now=T0, refused={2: refusal})
    assert plan.status.challenger is None
    assert plan.status.champion is not None
    assert plan.status.champion.version == 1
    assert _served(plan) == {1: (2, True)}  # traffic stays on the champion
    entry = plan.status.history[0]
    assert (entry.action, entry.version, entry.reason) == (
        HistoryAction.ABORT,
        2,
        "ArtifactRefused",
    )
    assert refusal in entry.message
    assert _reason(plan.status, "Degraded") == ("True", "ArtifactRefused")
    assert [e.reason for e in plan.events] == ["ArtifactRefused"]
    # Its pods are gone with it, and the version is not rolled out again (Auto or pinned).
    again = advance(spec, plan.status, candidates=mvs, ready={1: 2}, now=T0)
    assert again.status.challenger is None


def test_a_champion_whose_pods_refuse_its_artifact_is_reported_once() -> None:
    spec = _spec()
    status = _serving_v1(spec)
    plan = advance(spec, status, candidates=[_mv(1)], ready={1: 1}, now=T0, refused={1: "nope"})
    assert _reason(plan.status, "Degraded") == ("True", "ArtifactRefused")
    assert [e.reason for e in plan.events] == ["ArtifactRefused"]
    later = advance(
        spec, plan.status, candidates=[_mv(1)], ready={1: 1}, now=T0, refused={1: "nope"}
    )
    assert later.events == []


def test_children_held_by_others_make_the_deployment_not_ready() -> None:
    spec = _spec()
    conflict = "Service iris already exists and has no controller; the operator leaves it alone"
    plan = advance(
        spec, _serving_v1(spec), candidates=[_mv(1)], ready={1: 2}, now=T0, conflicts=[conflict]
    )
    assert _reason(plan.status, "Ready") == ("False", "NameConflict")
    ready = find_condition(plan.status.conditions, "Ready")
    assert ready is not None
    assert ready.message == conflict
    assert _reason(
        advance(spec, plan.status, candidates=[_mv(1)], ready={1: 2}, now=T0).status, "Ready"
    ) == ("True", "Available")


@pytest.mark.parametrize("phase", [ModelVersionPhase.REJECTED, ModelVersionPhase.AWAITING_APPROVAL])
def test_a_champion_no_longer_validated_gives_way_to_the_previous_one(
    phase: ModelVersionPhase,
) -> None:
    spec = _spec()
    status = _v2_rolling_out(spec)
    status = advance(spec, status, candidates=[_mv(1), _mv(2)], ready={1: 2, 2: 2}, now=T0).status
    assert status.champion is not None
    assert status.champion.version == 2
    withdrawn = [_mv(1), _mv(2, phase)]
    plan = advance(spec, status, candidates=withdrawn, ready={2: 2}, now=T0)
    assert plan.status.challenger is not None
    assert plan.status.challenger.version == 1
    assert _reason(plan.status, "Degraded") == ("True", "VersionWithdrawn")
    done = advance(spec, plan.status, candidates=withdrawn, ready={2: 2, 1: 2}, now=T0)
    assert done.status.champion is not None
    assert done.status.champion.version == 1
