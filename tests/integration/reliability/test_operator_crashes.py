"""Operator crashes during training cycles: SIGKILL or SIGTERM at each stage of a cycle.

One operator runs against a restricted namespace. Each cycle applies a
TrainingJob of one model, waits for a stage (just applied, Job created, trainer
pod running, Job complete) and then stops the operator: SIGKILL (nothing is
cleaned up) or SIGTERM (a graceful stop, which must exit 0); a new operator
is started and the cycle must converge to ``Succeeded``. Afterwards: one
trainer Job and one ModelVersion per TrainingJob, versions numbered 1..N in
the order trained (none skipped or reused), and the TrainingJobs, deleted
while the operator is down, are gone once it is back (no stuck finalizer).

``MLOPS_RELIABILITY_CYCLES`` sets the number of cycles (default 8: each stage
once with each signal); ``MLOPS_RELIABILITY_REPORT`` names a JSON file the
figures are written to (``benchmarks/scale/bench_crash_cycles.py`` runs 20).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.operator.conftest import RunningOperator, start_operator
from tests.integration.trainingjob.conftest import (
    apply,
    items,
    kill,
    training_job,
    wait_finished,
)
from tests.kube import get_json, kubectl, wait_for

pytestmark = pytest.mark.reliability

CYCLES = int(os.environ.get("MLOPS_RELIABILITY_CYCLES", "8"))
TRAINERS = ("-l", "app.kubernetes.io/component=trainer")


def _job_exists(config: Path, namespace: str, name: str) -> bool:
    return any(j["metadata"]["name"] == name for j in items(config, namespace, "jobs", *TRAINERS))


def _pod_running(config: Path, namespace: str, name: str) -> bool:
    pods = items(config, namespace, "pods", "-l", f"job-name={name}")
    return any((p.get("status") or {}).get("phase") in ("Running", "Succeeded") for p in pods)


def _job_complete(config: Path, namespace: str, name: str) -> bool:
    job = get_json(config, "job", name, "-n", namespace)
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Complete" and c["status"] == "True" for c in conditions)


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
            j["metadata"]["name"] for j in items(kubeconfig, namespace, "jobs", *TRAINERS)
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
    report = os.environ.get("MLOPS_RELIABILITY_REPORT")
    if report:
        figures = {
            "cycles": CYCLES,
            "kills": kills,
            "duplicate_jobs": len(jobs) - CYCLES,
            "duplicate_versions": len(versions) - CYCLES,
            "seconds": round(time.monotonic() - started, 1),
        }
        Path(report).write_text(json.dumps(figures))
