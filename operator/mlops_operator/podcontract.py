"""The contract between the operator and the pods it starts: what each pod reads and writes.

Four workloads run in pods the operator builds: the trainer, the validator, the
audit appender and the inference server. Each reads its settings from ``MLOPS_*``
variables (one pydantic-settings class per workload, `WORKLOADS`), finds the
artifact store in `STORE_URI_ENV` and, on a claim, at `ARTIFACT_MOUNT`, writes
scratch files under `SCRATCH_MOUNT`, and reports through
`TERMINATION_MESSAGE_PATH`. The builders (`mlops_operator.resources`) and the
programs import these names from here, and a test renders every pod and checks
that its environment parses with its workload's class and that it mounts only
the paths below, so the two sides cannot drift apart.

A user's pod overrides (`mlops_operator.api.pods`) may add variables, volumes and
mounts, but never in this contract's space: no ``MLOPS_`` variable, no reserved
volume name, nothing mounted under a reserved path.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ARTIFACT_MOUNT",
    "ARTIFACT_VOLUME",
    "AUDIT_ENTRIES_ENV",
    "DATASET_MOUNT_ROOT",
    "DATASET_VOLUME",
    "ENV_PREFIX",
    "EXIT_ARTIFACT_REFUSED",
    "IMAGE_USER",
    "LABELS_MOUNT",
    "PAYLOAD_LOG_MOUNT",
    "RESERVED_MOUNTS",
    "RESERVED_VOLUMES",
    "SCRATCH_MOUNT",
    "SCRATCH_VOLUME",
    "STORE_URI_ENV",
    "TERMINATION_MESSAGE_PATH",
    "THREAD_ENV",
    "TRAINER_OUTPUT_DIR",
    "WORKLOADS",
    "Workload",
]

ENV_PREFIX = "MLOPS_"
"""Every variable of the contract starts with it; a pod override may not."""

STORE_URI_ENV = f"{ENV_PREFIX}STORE_URI"
"""The artifact store's root (``file://`` + `ARTIFACT_MOUNT` on a claim, else an object store)."""
AUDIT_ENTRIES_ENV = f"{ENV_PREFIX}AUDIT_ENTRIES"
"""The audit appender's entries (a JSON list, oldest first)."""

SCRATCH_VOLUME = "scratch"
SCRATCH_MOUNT = "/tmp"
"""The writable ``emptyDir`` of a read-only container (Python and libraries expect ``/tmp``)."""
ARTIFACT_VOLUME = "artifacts"
ARTIFACT_MOUNT = "/var/lib/mlops/artifacts"
DATASET_VOLUME = "dataset"
DATASET_MOUNT_ROOT = "/var/lib/mlops/datasets"
"""A TrainingJob's ``dataset.pvc`` claim is mounted at ``<root>/<claim>``."""
PAYLOAD_LOG_MOUNT = "/var/lib/mlops/payload-log"
"""Where a serving pod sees its deployment's payload-log folder, apart from the (read-only) store."""
LABELS_MOUNT = "/var/lib/mlops/labels"
"""Where a serving pod sees its deployment's label logs, apart from the (read-only) store."""
TRAINER_OUTPUT_DIR = f"{SCRATCH_MOUNT}/model"
IMAGE_USER = 65532
"""The numeric non-root user and group of the project's images (``USER 65532:65532`` in
images/Dockerfile), and so what the pods run as unless the operator is told otherwise
(`mlops_operator.api.pods.WorkloadSecurityContext`). Numeric, so that ``runAsNonRoot``
holds with no ``runAsUser`` in the pod, on platforms that assign the UID themselves."""
TERMINATION_MESSAGE_PATH = "/dev/termination-log"
EXIT_ARTIFACT_REFUSED = 3
"""The server's exit code when it refuses its artifact (the operator reads it from the pod,
the reason from `TERMINATION_MESSAGE_PATH`)."""

THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
"""The numeric libraries' thread pools (OpenMP: scikit-learn's own loops; OpenBLAS: numpy and
scipy), which the trainer's and validator's pods size to the CPUs they may use: the whole CPUs
of their limit, or without one their CPU request rounded up. Left unset, each library starts a
thread per core of the node, and the idle ones spin on CPU the pod never reserved: on two idle
CPUs, 0.4 of an iris training's 3.1 CPU-seconds, and more on a busy node. Read by the
libraries, not by the programs; a pod override that sets either one has both to itself."""

RESERVED_VOLUMES = (SCRATCH_VOLUME, ARTIFACT_VOLUME, DATASET_VOLUME)
RESERVED_MOUNTS = (SCRATCH_MOUNT, "/var/lib/mlops")
"""Paths (and everything under them) only the contract mounts."""


@dataclass(frozen=True)
class Workload:
    """One kind of pod: its container and what reads its environment."""

    name: str
    container: str
    settings: str | None
    """The import path (``module:Class``) of the pydantic-settings class reading its variables."""
    env: tuple[str, ...] = ()
    """Variables the operator sets besides that class's: contract variables the program reads,
    and `THREAD_ENV`, which its libraries read."""


WORKLOADS = (
    Workload("trainer", "trainer", "mlops_operator.trainer.settings:TrainerSettings", THREAD_ENV),
    Workload(
        "validator",
        "validator",
        "mlops_operator.validator.settings:ValidatorSettings",
        env=(STORE_URI_ENV, *THREAD_ENV),
    ),
    Workload("audit", "audit", None, env=(AUDIT_ENTRIES_ENV, STORE_URI_ENV)),
    Workload(
        "server", "server", "mlops_operator.serving.settings:ServingSettings", env=(STORE_URI_ENV,)
    ),
)
