"""Workload faults: the trainer process killed mid-run, the artifact store read-only.

- The trainer's process is SIGKILLed on the local node (exit 137, what an
  out-of-memory kill or a lost process looks like): with ``backoffLimit: 1``
  the Job retries once and the TrainingJob still succeeds; killed twice, the
  Job fails for good and the TrainingJob is ``Failed`` with a reason and a
  message, after exactly two pods (the pod failure policy counts 137 against
  the back-off limit, unlike the trainer's own exit 1).
- The namespace's artifact claim is read-only (its folders made so from the
  host, through the PersistentVolume's path): the TrainingJob fails at once
  with a message naming the store, and nothing is left under a final name in
  the store (only dot-prefixed temporary files may remain).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.integration.operator.conftest import RunningOperator
from tests.integration.trainingjob.conftest import apply, items, training_job, wait_finished
from tests.kube import get_json, kubectl, wait_for

pytestmark = pytest.mark.reliability

TRAINER_MODULE = b"mlops_operator.trainer"


def _trainer_pids(namespace: str, name: str) -> set[int]:
    """Host PIDs of the trainer processes of TrainingJob `namespace/name` on the local node."""
    marker = f"MLOPS_TRAINING_JOB={namespace}/{name}".encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if TRAINER_MODULE in (entry / "cmdline").read_bytes() and marker in (
                entry / "environ"
            ).read_bytes().split(b"\0"):
                found.add(int(entry.name))
        except OSError:
            continue  # gone meanwhile, or not ours to read
    return found


def _kill_next_trainer(namespace: str, name: str, killed: set[int]) -> None:
    """Wait for a trainer process of `name` not killed yet, and SIGKILL it."""
    pids = wait_for(
        lambda: _trainer_pids(namespace, name) - killed,
        timeout=180,
        what=f"a new trainer process of {name}",
    )
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    killed |= pids


def test_a_killed_trainer_is_retried_within_the_backoff_limit_then_fails(
    operator: RunningOperator, kubeconfig: Path, namespace: str
) -> None:
    apply(kubeconfig, training_job(namespace, "iris-retried", backoffLimit=1))
    apply(kubeconfig, training_job(namespace, "iris-exhausted", backoffLimit=1))
    killed: set[int] = set()
    _kill_next_trainer(namespace, "iris-retried", killed)
    _kill_next_trainer(namespace, "iris-exhausted", killed)
    _kill_next_trainer(namespace, "iris-exhausted", killed)

    retried = wait_finished(kubeconfig, namespace, "iris-retried")["status"]
    assert (retried["phase"], retried["modelVersion"]) == ("Succeeded", "iris-v1"), retried
    assert len(items(kubeconfig, namespace, "pods", "-l", "job-name=iris-retried")) == 2

    exhausted = wait_finished(kubeconfig, namespace, "iris-exhausted")["status"]
    assert exhausted["phase"] == "Failed", exhausted
    condition = next(c for c in exhausted["conditions"] if c["type"] == "Succeeded")
    assert (condition["status"], condition["reason"]) == ("False", "TrainingFailed")
    assert "backoff limit" in condition["message"], condition
    assert "exited with code 137 (SIGKILL" in condition["message"], condition
    assert len(items(kubeconfig, namespace, "pods", "-l", "job-name=iris-exhausted")) == 2
    job = get_json(kubeconfig, "job", "iris-exhausted", "-n", namespace)
    failed = next(c for c in job["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded", failed
    assert "modelVersion" not in exhausted
    versions = [v["metadata"]["name"] for v in items(kubeconfig, namespace, "modelversions")]
    assert versions == ["iris-v1"]


def _claim_directory(kubeconfig: Path, namespace: str, claim: str) -> Path:
    def bound() -> str | None:
        found = get_json(kubeconfig, "pvc", claim, "-n", namespace)
        return found["spec"].get("volumeName") if found["status"].get("phase") == "Bound" else None

    volume = wait_for(bound, timeout=60, what=f"claim {claim} to be bound")
    return Path(get_json(kubeconfig, "pv", volume)["spec"]["hostPath"]["path"])


def test_a_read_only_artifact_store_fails_the_training_and_leaves_no_final_artifact(
    operator: RunningOperator, kubeconfig: Path, namespace: str
) -> None:
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "mlops-artifacts", "namespace": namespace},
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    apply(kubeconfig, claim)
    root = _claim_directory(kubeconfig, namespace, "mlops-artifacts")
    # The node grants the pod's fsGroup write access to the claim's root when the pod
    # starts (as the kubelet does), so the store's top-level folders are what is locked.
    tops = [root / "datasets", root / "models"]
    for top in tops:
        top.mkdir(parents=True, exist_ok=True)
        top.chmod(0o555)
    try:
        apply(kubeconfig, training_job(namespace, "iris-no-room", backoffLimit=3))
        status = wait_finished(kubeconfig, namespace, "iris-no-room")["status"]
    finally:
        for top in tops:
            top.chmod(0o755)
    assert status["phase"] == "Failed", status
    condition = next(c for c in status["conditions"] if c["type"] == "Succeeded")
    assert condition["status"] == "False"
    assert "artifact store" in condition["message"] or "cannot write" in condition["message"]
    assert "Permission denied" in condition["message"], condition["message"]
    # The trainer's exit 1 fails the Job at once: a read-only store is not retried.
    assert len(items(kubeconfig, namespace, "pods", "-l", "job-name=iris-no-room")) == 1
    finals = [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert finals == [], f"half-written artifacts under final names: {finals}"
    assert items(kubeconfig, namespace, "modelversions") == []
    kubectl(kubeconfig, "delete", "trainingjob", "iris-no-room", "-n", namespace)
