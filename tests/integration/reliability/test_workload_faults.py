"""Workload faults: the trainer process killed mid-run, the artifact store read-only or full.

- The trainer's process is SIGKILLed on the local node (exit 137, what an
  out-of-memory kill or a lost process looks like): with ``backoffLimit: 1``
  the Job retries once and the TrainingJob still succeeds; killed twice, the
  Job fails for good and the TrainingJob is ``Failed`` with a reason and a
  message, after exactly two pods (the pod failure policy counts 137 against
  the back-off limit, unlike the trainer's own exit 1).
- The namespace's artifact claim refuses writes: read-only (its folders made so
  from the host, through the PersistentVolume's path), or full (a 1 MiB claim,
  which the local node backs with a 1 MiB filesystem, filled from the host but
  for a few blocks). Either way the TrainingJob fails at once with reason
  ``StorageFailed`` and the OS error in its message, the store holds exactly the
  files it held before (nothing under a final name, no temporary left), no
  ModelVersion is made, and the operator keeps running.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest

from tests.integration.operator.conftest import RunningOperator, http_get
from tests.integration.trainingjob.conftest import (
    apply,
    items,
    trainer_job,
    trainer_pods,
    training_job,
    wait_finished,
)
from tests.kube import get_json, kubectl, wait_for

pytestmark = pytest.mark.reliability

TRAINER_MODULE = b"mlops_operator.trainer"
ARTIFACT_CLAIM = "mlops-artifacts"
FREE_BLOCKS = 4


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
    assert len(items(kubeconfig, namespace, "pods", *trainer_pods("iris-retried"))) == 2

    exhausted = wait_finished(kubeconfig, namespace, "iris-exhausted")["status"]
    assert exhausted["phase"] == "Failed", exhausted
    condition = next(c for c in exhausted["conditions"] if c["type"] == "Succeeded")
    assert (condition["status"], condition["reason"]) == ("False", "TrainingFailed")
    assert "backoff limit" in condition["message"], condition
    assert "exited with code 137 (SIGKILL" in condition["message"], condition
    assert len(items(kubeconfig, namespace, "pods", *trainer_pods("iris-exhausted"))) == 2
    job = trainer_job(kubeconfig, namespace, "iris-exhausted")
    failed = next(c for c in job["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded", failed
    assert "modelVersion" not in exhausted
    versions = [v["metadata"]["name"] for v in items(kubeconfig, namespace, "modelversions")]
    assert versions == ["iris-v1"]


def _artifact_claim(kubeconfig: Path, namespace: str, size: str) -> Path:
    """Create the namespace's artifact claim of `size` (before the operator would); its host path."""
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": ARTIFACT_CLAIM, "namespace": namespace},
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": size}}},
    }
    apply(kubeconfig, claim)

    def bound() -> str | None:
        found = get_json(kubeconfig, "pvc", ARTIFACT_CLAIM, "-n", namespace)
        return found["spec"].get("volumeName") if found["status"].get("phase") == "Bound" else None

    volume = wait_for(bound, timeout=60, what=f"claim {ARTIFACT_CLAIM} to be bound")
    return Path(get_json(kubeconfig, "pv", volume)["spec"]["hostPath"]["path"])


def _files(root: Path) -> set[Path]:
    """Every file in the store, temporary ones included."""
    return {p for p in root.rglob("*") if p.is_file()}


def _train_into_failing_store(
    operator: RunningOperator, kubeconfig: Path, namespace: str, root: Path, os_error: str
) -> None:
    """Train once; assert it failed at once on the store's `os_error`, which it left as it was."""
    before = _files(root)
    apply(kubeconfig, training_job(namespace, "iris-no-room", backoffLimit=3))
    status = wait_finished(kubeconfig, namespace, "iris-no-room")["status"]
    assert status["phase"] == "Failed", status
    condition = next(c for c in status["conditions"] if c["type"] == "Succeeded")
    assert (condition["status"], condition["reason"]) == ("False", "StorageFailed"), condition
    assert "cannot write" in condition["message"], condition["message"]
    assert os_error in condition["message"], condition["message"]
    # The trainer's exit 1 fails the Job at once: a store that refuses writes is not retried.
    assert len(items(kubeconfig, namespace, "pods", *trainer_pods("iris-no-room"))) == 1
    # Nothing under a final name, and the temporary written to is removed too.
    assert _files(root) == before
    assert items(kubeconfig, namespace, "modelversions") == []
    assert operator.process.poll() is None, f"the operator exited; log: {operator.log}"
    liveness = http_get(operator.liveness_url)
    assert liveness is not None, f"the operator does not answer; log: {operator.log}"
    assert liveness[0] == 200, liveness
    kubectl(kubeconfig, "delete", "trainingjob", "iris-no-room", "-n", namespace)


def test_a_read_only_artifact_store_fails_the_training_and_leaves_no_final_artifact(
    operator: RunningOperator, kubeconfig: Path, namespace: str
) -> None:
    root = _artifact_claim(kubeconfig, namespace, "1Gi")
    # The node grants the pod's fsGroup write access to the claim's root when the pod
    # starts (as the kubelet does), so the store's top-level folders are what is locked.
    tops = [root / "datasets", root / "models"]
    for top in tops:
        top.mkdir(parents=True, exist_ok=True)
        top.chmod(0o555)
    try:
        _train_into_failing_store(operator, kubeconfig, namespace, root, "Permission denied")
    finally:
        for top in tops:
            top.chmod(0o755)


def test_a_full_artifact_store_fails_the_training_and_leaves_no_final_artifact(
    operator: RunningOperator, kubeconfig: Path, namespace: str
) -> None:
    root = _artifact_claim(kubeconfig, namespace, "1Mi")
    # An older artifact fills the claim's filesystem, then leaves FREE_BLOCKS: room for the
    # dataset's folders, not for its snapshot (iris: 5 kB), so a write fails half-way.
    older = root / "models" / "older" / "model.onnx"
    older.parent.mkdir(parents=True)
    with contextlib.suppress(OSError), older.open("wb") as out:
        for _ in range(2 * 1024):  # 2 MiB, past the claim
            out.write(bytes(1024))
            out.flush()
    block = os.statvfs(root).f_bsize
    os.truncate(older, older.stat().st_size - FREE_BLOCKS * block)
    assert os.statvfs(root).f_bavail <= FREE_BLOCKS + 1, "the claim is larger than it asked for"
    _train_into_failing_store(operator, kubeconfig, namespace, root, "No space left on device")
