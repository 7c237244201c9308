"""Operator crashes: SIGKILL or SIGTERM at each stage of training cycles, and of full cycles.

One operator runs against a restricted namespace; it is stopped with SIGKILL
(nothing is cleaned up) or SIGTERM (a graceful stop, which must exit 0) and a
new one is started, again and again.

*Training cycles*: each cycle applies a TrainingJob of one model, waits for a
stage (just applied, Job created, trainer pod running, Job complete), stops the
operator, and must converge to ``Succeeded``. Afterwards: one trainer Job and
one ModelVersion per TrainingJob, versions numbered 1..N in the order trained
(none skipped or reused), and the TrainingJobs, deleted while the operator is
down, are gone once it is back (no stuck finalizer).

*Full cycles*: one ModelDeployment (Auto promotion, canary 50 % → 100 %) serves
whatever the cycles make. Each cycle applies a TrainingJob and stops the
operator in every phase it passes through — trainer running, version made and
its validation Job created, canary at 50 %, canary at 100 % (the promotion;
the first version is deployed without a canary) — alternating the signals, or,
with a seed, at random moments. Each cycle must end with the new version the
Ready champion, served alone (one Deployment, one ReplicaSet) and answering
through the Service; one trainer Job, one ModelVersion and one validation Job
per cycle, versions 1..N, one history entry and one audit log line per
decision, never more than two serving Deployments. At the end, the
ModelDeployment deleted while the operator is down and the rest deleted while
it runs are gone, their children with them.

Environment: ``MLOPS_RELIABILITY_CYCLES`` (training cycles, default 8: each
stage once with each signal), ``MLOPS_RELIABILITY_FULL_CYCLES`` (default 2),
``MLOPS_RELIABILITY_SEED`` (full cycles stopped at random moments from this
seed), ``MLOPS_RELIABILITY_REPORT`` (a JSON file the figures are written to;
``benchmarks/scale/bench_crash_cycles.py`` runs either test at length).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.modeldeployment.traffic import Traffic, predict
from tests.integration.operator.conftest import RunningOperator, start_operator
from tests.integration.trainingjob.conftest import (
    apply,
    finished,
    items,
    kill,
    trainer_pods,
    training_job,
    wait_finished,
)
from tests.kube import get_json, kubectl, wait_for

pytestmark = pytest.mark.reliability

CYCLES = int(os.environ.get("MLOPS_RELIABILITY_CYCLES", "8"))
TRAINERS = ("-l", "app.kubernetes.io/component=trainer")


def _job_exists(config: Path, namespace: str, name: str) -> bool:
    return bool(items(config, namespace, "jobs", *trainer_pods(name)))


def _pod_running(config: Path, namespace: str, name: str) -> bool:
    pods = items(config, namespace, "pods", *trainer_pods(name))
    return any((p.get("status") or {}).get("phase") in ("Running", "Succeeded") for p in pods)


def _job_complete(config: Path, namespace: str, name: str) -> bool:
    # No Job yet (the operator makes it after the apply this waits from) is not complete.
    return any(
        c["type"] == "Complete" and c["status"] == "True"
        for job in items(config, namespace, "jobs", *trainer_pods(name))
        for c in (job.get("status") or {}).get("conditions") or []
    )


Stage = Callable[[Path, str, str], bool]
STAGES: list[tuple[str, Stage | None]] = [
    ("applied", None),
    ("job created", _job_exists),
    ("pod running", _pod_running),
    ("job complete", _job_complete),
]


def _stop(running: RunningOperator, how: signal.Signals) -> None:
    if how is signal.SIGKILL:
        kill(running)
    else:
        assert running.stop() == 0, f"the operator did not exit cleanly; log: {running.log}"


def test_training_cycles_converge_through_operator_crashes(
    operator: RunningOperator, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    running = operator
    names = [f"iris-cycle-{i}" for i in range(CYCLES)]
    kills = {"SIGKILL": 0, "SIGTERM": 0}
    started = time.monotonic()
    try:
        for i, name in enumerate(names):
            stage, reached = STAGES[i % len(STAGES)]
            # Alternate the signals, shifted each round, so every stage meets both.
            how = signal.SIGKILL if (i + i // len(STAGES)) % 2 == 0 else signal.SIGTERM
            apply(kubeconfig, training_job(namespace, name))
            if reached is not None:
                wait_for(
                    lambda: reached(kubeconfig, namespace, name),  # noqa: B023  # waited here
                    timeout=240,
                    what=f"cycle {i}: {stage}",
                )
            _stop(running, how)
            kills[how.name] += 1
            running = start_operator(kubeconfig, namespace, tmp_path / f"operator-{i}.log")
            status = wait_finished(kubeconfig, namespace, name)["status"]
            assert status["phase"] == "Succeeded", (i, stage, how.name, status)
            assert status["modelVersion"] == f"iris-v{i + 1}", (i, stage, how.name, status)

        versions = items(kubeconfig, namespace, "modelversions")
        trainings = {t["metadata"]["name"]: t for t in items(kubeconfig, namespace, "trainingjobs")}
        produced = sorted(
            (v["spec"]["version"], v["spec"]["lineage"]["trainingJob"]) for v in versions
        )
        assert produced == [(i + 1, name) for i, name in enumerate(names)], produced
        for version in versions:
            made_by = version["spec"]["lineage"]["trainingJob"]
            uid = version["metadata"]["annotations"]["mlops.dev/training-job-uid"]
            assert uid == trainings[made_by]["metadata"]["uid"]
        jobs = sorted(
            j["metadata"]["labels"]["mlops.dev/training-job"]
            for j in items(kubeconfig, namespace, "jobs", *TRAINERS)
        )
        assert jobs == sorted(names), "duplicate or missing trainer Jobs"

        kill(running)
        kubectl(kubeconfig, "delete", "trainingjobs", "--all", "-n", namespace, "--wait=false")
        running = start_operator(kubeconfig, namespace, tmp_path / "operator-final.log")
        wait_for(
            lambda: not items(kubeconfig, namespace, "trainingjobs"),
            timeout=120,
            what="the deleted TrainingJobs to go (no stuck finalizer)",
        )
        assert len(items(kubeconfig, namespace, "modelversions")) == CYCLES, "versions outlive"
    finally:
        if running.process.poll() is None:
            running.stop()
    _write_report(
        {
            "cycles": CYCLES,
            "kills": kills,
            "duplicate_jobs": len(jobs) - CYCLES,
            "duplicate_versions": len(versions) - CYCLES,
            "seconds": round(time.monotonic() - started, 1),
        }
    )


# Full cycles: train → version → validate → canary → promote, with the operator stopped in each.

FULL_CYCLES = int(os.environ.get("MLOPS_RELIABILITY_FULL_CYCLES", "2"))
SEED = os.environ.get("MLOPS_RELIABILITY_SEED")
RANDOM_STOPS = 2
"""Stops per cycle at random moments (with a seed); a cycle that converged first gets fewer."""
MDEP = "iris"
SERVING = ("-l", f"app.kubernetes.io/component=inference-server,mlops.dev/deployment={MDEP}")
VALIDATORS = ("-l", "app.kubernetes.io/component=validator")
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3]]
CYCLE_TIMEOUT = 300
# Two canary steps, so that "canary" (50 %) and "promoting" (100 %, the champion scaled to
# nothing) are phases a stop can land in; short pauses keep a cycle quick.
DEPLOYMENT = {
    "apiVersion": "mlops.dev/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": MDEP},
    "spec": {
        "modelName": "iris",
        "promotion": "Auto",
        "replicas": 1,
        "historyLimit": 100,
        "rollout": {
            "strategy": "Canary",
            "canary": {"steps": [{"weight": 50, "pause": "4s"}, {"weight": 100, "pause": "4s"}]},
            "analysis": {
                "interval": "3s",
                "minRequests": 5,
                "failureLimit": 3,
                "maxErrorRate": 0.05,
            },
        },
    },
}
PHASES = ("applied", "training", "validating", "canary", "promoting", "served")
"""How far a cycle got, in order; a stop is labelled with the phase it landed in."""
TRAINING, VALIDATING, CANARY_STEP, PROMOTING, SERVED = range(1, 6)


@dataclass
class FullCycles:
    """The running scenario: the operator, and what the stops and observations found."""

    config: Path
    namespace: str
    logs: Path
    running: RunningOperator
    kills: Counter[str] = field(default_factory=Counter)
    by_phase: dict[str, Counter[str]] = field(default_factory=dict)
    most_deployments: int = 0
    requests: Counter[int] = field(default_factory=Counter)
    restarts: int = 0
    template_changes: int = 0

    def progress(self, number: int, name: str) -> int:
        """How far the cycle making version `number` (TrainingJob `name`) got: an index of PHASES."""
        deployments = items(self.config, self.namespace, "deployments", *SERVING)
        self.most_deployments = max(self.most_deployments, len(deployments))
        status = get_json(self.config, "-n", self.namespace, "mdep", MDEP).get("status") or {}
        challenger = status.get("challenger") or {}
        if challenger.get("version") == number:
            return PROMOTING if challenger.get("weight") == 100 else CANARY_STEP
        if (status.get("champion") or {}).get("version") == number:
            return SERVED
        if len(items(self.config, self.namespace, "jobs", *VALIDATORS)) >= number:
            return VALIDATING
        return TRAINING if _pod_running(self.config, self.namespace, name) else 0

    def restart(self, how: signal.Signals, phase: int) -> None:
        """Stop the operator with `how` in `phase` and start a new one."""
        _stop(self.running, how)
        self.kills[how.name] += 1
        self.by_phase.setdefault(PHASES[phase], Counter())[how.name] += 1
        self.restarts += 1
        log = self.logs / f"operator-{self.restarts}.log"
        self.running = start_operator(self.config, self.namespace, log)

    def figures(self) -> dict[str, Any]:
        """What the stops and observations found so far."""
        return {
            "kills": dict(self.kills),
            "kills_by_phase": {phase: dict(c) for phase, c in self.by_phase.items()},
            "most_serving_deployments": self.most_deployments,
            "requests": sum(self.requests.values()),
            "failed_requests": sum(n for code, n in self.requests.items() if code != 200),
            "template_changes": self.template_changes,
        }


def _signal(cycle: int, stop: int) -> signal.Signals:
    # Alternate within a cycle and shift each cycle, so that every phase meets both signals.
    return signal.SIGKILL if (cycle + stop) % 2 == 0 else signal.SIGTERM


def _stop_at_phases(run: FullCycles, cycle: int, name: str) -> None:
    """Stop once in each phase the cycle passes through (the first version is deployed, no canary)."""
    number = cycle + 1
    phases = (
        (TRAINING, VALIDATING) if cycle == 0 else (TRAINING, VALIDATING, CANARY_STEP, PROMOTING)
    )
    for stop, phase in enumerate(phases):
        reached = PHASES.index(
            wait_for(
                lambda: _reached(run, number, name, phase),  # noqa: B023  # waited here
                timeout=CYCLE_TIMEOUT,
                what=f"cycle {cycle}: {PHASES[phase]}",
            )
        )
        if reached == SERVED:
            return
        run.restart(_signal(cycle, stop), reached)


def _reached(run: FullCycles, number: int, name: str, phase: int) -> str | None:
    """The phase the cycle is in once it got to `phase` (or further), else None."""
    now = run.progress(number, name)
    return PHASES[now] if now >= phase else None


def _stop_at_random(run: FullCycles, cycle: int, name: str, rng: random.Random) -> None:
    """Stop at up to RANDOM_STOPS moments drawn from `rng`, each timed from the last start."""
    number = cycle + 1
    for stop in range(RANDOM_STOPS):
        delay = rng.uniform(0.5, 20.0)
        deadline = time.monotonic() + delay
        # Watched, not slept: the cycle may be served before the moment comes.
        phase = PHASES.index(
            wait_for(
                lambda: _reached(run, number, name, SERVED if time.monotonic() < deadline else 0),  # noqa: B023
                timeout=delay + 60,
                what=f"cycle {cycle}: the moment {delay:.1f} s after the last start",
            )
        )
        if phase == SERVED:
            return
        print(f"cycle {cycle}: stop {stop} at +{delay:.1f} s ({PHASES[phase]})")
        run.restart(_signal(cycle, stop), phase)


def _converged(run: FullCycles, number: int, name: str) -> bool:
    """Version `number` is the champion, Ready, alone: one Deployment, one ReplicaSet with pods."""
    config, ns = run.config, run.namespace
    training = finished(config, ns, name)
    if training is not None:
        assert training["status"]["phase"] == "Succeeded", training["status"]
    if run.progress(number, name) != SERVED:
        return False
    status = get_json(config, "-n", ns, "mdep", MDEP)["status"]
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status["conditions"])
    deployments = [d["metadata"]["name"] for d in items(config, ns, "deployments", *SERVING)]
    replica_sets = items(config, ns, "replicasets", *SERVING)
    # An older ReplicaSet scaled to nothing is the Deployment's revision history: its pod
    # template changed (counted; the operator's code edited under a running test does that).
    active = [r for r in replica_sets if r["spec"]["replicas"] > 0]
    done = (
        training is not None
        and ready
        and not status.get("challenger")
        and deployments == [f"{MDEP}-v{number}"]
        and len(active) == 1
    )
    if done:
        run.template_changes += len(replica_sets) - 1
    return done


def _state(run: FullCycles) -> str:
    """The ModelDeployment's status and its serving objects, for a failure message."""
    config, ns = run.config, run.namespace
    status = get_json(config, "-n", ns, "mdep", MDEP).get("status") or {}
    lines = [json.dumps({k: status.get(k) for k in ("champion", "challenger", "conditions")})]
    for resource in ("deployments", "replicasets", "pods"):
        for obj in items(config, ns, resource, *SERVING):
            counts = {k: v for k, v in (obj.get("status") or {}).items() if k != "conditions"}
            lines.append(f"{resource} {obj['metadata']['name']}: {json.dumps(counts)[:300]}")
    return "\n".join(lines)


def _answers(url: str, number: int) -> bool:
    status, body = predict(url, ROWS[:1])
    return status == 200 and str(body.get("model_version")) == str(number)


def _owned_by(obj: dict[str, Any], uid: str) -> bool:
    return any(o["uid"] == uid for o in obj["metadata"].get("ownerReferences") or [])


def _check_records(run: FullCycles, names: list[str], figures: dict[str, Any]) -> None:
    """One trainer Job per TrainingJob, one ModelVersion and one validation Job per version,
    versions 1..N in training order, one decision per version in the history.

    The surplus of each kind goes to ``figures["duplicates"]`` before anything is asserted.
    """
    config, ns = run.config, run.namespace
    trainings = {t["metadata"]["name"]: t for t in items(config, ns, "trainingjobs")}
    versions = items(config, ns, "modelversions")
    trainers = items(config, ns, "jobs", *TRAINERS)
    validators = items(config, ns, "jobs", *VALIDATORS)
    duplicates = {
        "trainer_jobs": len(trainers) - len(names),
        "validation_jobs": len(validators) - len(names),
        "model_versions": len(versions) - len(names),
    }
    figures["duplicates"] = duplicates
    produced = sorted((v["spec"]["version"], v["spec"]["lineage"]["trainingJob"]) for v in versions)
    assert produced == [(i + 1, name) for i, name in enumerate(names)], produced
    for version in versions:
        made_by = trainings[version["spec"]["lineage"]["trainingJob"]]
        uid = version["metadata"]["annotations"]["mlops.dev/training-job-uid"]
        assert uid == made_by["metadata"]["uid"], version["metadata"]
        checks = [j for j in validators if _owned_by(j, version["metadata"]["uid"])]
        assert len(checks) == 1, (version["metadata"]["name"], checks)
        assert version["status"]["phase"] == "Validated", version["status"]
    for training in trainings.values():
        jobs = [j for j in trainers if _owned_by(j, training["metadata"]["uid"])]
        assert len(jobs) == 1, (training["metadata"]["name"], jobs)
    assert not any(duplicates.values()), duplicates
    history = get_json(config, "-n", ns, "mdep", MDEP)["status"]["history"]
    decisions = [(e["action"], e["version"]) for e in history]
    expected = [("Promote", n) for n in range(len(names), 1, -1)] + [("Deploy", 1)]
    assert decisions == expected, decisions


def _audit_log(config: Path, ns: str) -> Path:
    claim = get_json(config, "-n", ns, "pvc", "mlops-artifacts")
    volume = get_json(config, "pv", claim["spec"]["volumeName"])
    root = Path(volume["spec"]["hostPath"]["path"])
    return root / "audit" / ns / "modeldeployments" / f"{MDEP}.jsonl"


def _audited(log: Path) -> list[tuple[str, int]]:
    if not log.exists():
        return []
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [(e["action"], e["version"]) for e in entries]


def _gone(config: Path, ns: str, *resources: str) -> bool:
    return not any(items(config, ns, resource) for resource in resources)


def _write_report(figures: dict[str, Any]) -> None:
    report = os.environ.get("MLOPS_RELIABILITY_REPORT")
    if report:
        Path(report).write_text(json.dumps(figures))


def test_full_cycles_converge_through_operator_crashes(
    kubeconfig: Path,
    namespace: str,
    crds: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Train, version, validate, canary and promote N times; stop the operator in every phase."""
    # The analysis scrapes the pods directly: no wait for Prometheus' scrape interval.
    monkeypatch.delenv("MLOPS_PROMETHEUS_URL", raising=False)
    rng = random.Random(int(SEED)) if SEED is not None else None
    print(f"full cycles: {FULL_CYCLES}; stops: " + (f"random, seed {SEED}" if rng else "phases"))
    ns, config = namespace, kubeconfig
    run = FullCycles(config, ns, tmp_path, start_operator(config, ns, tmp_path / "operator-0.log"))
    names = [f"iris-full-{i}" for i in range(FULL_CYCLES)]
    figures: dict[str, Any] = {
        "cycles": FULL_CYCLES,
        "stops": f"random seed {SEED}" if rng else "phases",
    }
    url: str | None = None
    started = time.monotonic()
    try:
        kubectl(config, "-n", ns, "apply", "-f", "-", stdin=json.dumps(DEPLOYMENT))
        for cycle, name in enumerate(names):
            number = cycle + 1
            apply(config, training_job(ns, name))
            # From the second cycle on, requests through the Service give the canary its evidence.
            traffic = Traffic(url, ROWS, interval=0.1) if url else None
            with traffic or contextlib.nullcontext():
                if rng is None:
                    _stop_at_phases(run, cycle, name)
                else:
                    _stop_at_random(run, cycle, name, rng)
                try:
                    wait_for(
                        lambda: _converged(run, number, name),  # noqa: B023  # waited here
                        timeout=CYCLE_TIMEOUT,
                        what=f"cycle {cycle}: version {number} served alone",
                    )
                except AssertionError as error:
                    raise AssertionError(f"{error}\n{_state(run)}") from None
            if traffic is not None:
                run.requests.update(traffic.outcomes)
            url = (
                url or f"http://{get_json(config, '-n', ns, 'service', MDEP)['spec']['clusterIP']}"
            )
            wait_for(
                lambda: _answers(url, number),  # noqa: B023  # waited here
                timeout=60,
                what=f"cycle {cycle}: the Service to answer from version {number}",
            )
            _check_records(run, names[:number], figures)
            figures["versions"] = number
            print(f"cycle {cycle}: v{number} served after {time.monotonic() - started:.0f} s")

        log = _audit_log(config, ns)
        expected = [("Deploy", 1)] + [("Promote", n) for n in range(2, FULL_CYCLES + 1)]
        wait_for(lambda: _audited(log) == expected or None, timeout=120,
                 what=f"the audit log to hold each decision once: {_audited(log)}")  # fmt: skip

        # Deleted while the operator is down: gone once it is back, its Deployments with it.
        kill(run.running)
        kubectl(config, "-n", ns, "delete", "mdep", MDEP, "--wait=false")
        run.running = start_operator(config, ns, tmp_path / "operator-final.log")
        wait_for(lambda: _gone(config, ns, "mdep"), timeout=120,
                 what="the ModelDeployment deleted while the operator was down to go")  # fmt: skip
        # Deleted while it runs: the rest, and their Jobs with them.
        kubectl(config, "-n", ns, "delete", "trainingjobs,modelversions", "--all", "--wait=false")
        wait_for(lambda: _gone(config, ns, "trainingjobs", "modelversions"), timeout=120,
                 what="the deleted TrainingJobs and ModelVersions to go")  # fmt: skip
        wait_for(
            lambda: (
                not items(config, ns, "deployments", *SERVING)
                and not items(config, ns, "jobs", *TRAINERS)
                and not items(config, ns, "jobs", *VALIDATORS)
            ),
            timeout=120,
            what="the garbage collector to remove the Deployments and Jobs",
        )
        assert run.running.stop() == 0, f"the operator did not exit cleanly: {run.running.log}"
        assert run.most_deployments <= 2, run.most_deployments
    finally:
        if run.running.process.poll() is None:
            run.running.stop()
        figures |= run.figures() | {"seconds": round(time.monotonic() - started, 1)}
        print(f"figures: {json.dumps(figures)}")
        _write_report(figures)
