"""How many CPUs the container may use: the cgroup limit, not the host's core count.

onnxruntime sizes its thread pool from the host's cores by default; in a pod
limited to one CPU on a 64-core node that means 64 threads fighting over one
CPU's quota and heavy throttling. The server sizes workers and threads from this.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = ["cpu_limit", "plan_workers"]

_CGROUP_ROOT = Path("/sys/fs/cgroup")


def _quota_from_cgroup(root: Path) -> float | None:
    v2 = root / "cpu.max"
    if v2.is_file():
        quota, _, period = v2.read_text().strip().partition(" ")
        if quota != "max" and period:
            return int(quota) / int(period)
        return None
    quota_file, period_file = root / "cpu" / "cpu.cfs_quota_us", root / "cpu" / "cpu.cfs_period_us"
    if quota_file.is_file() and period_file.is_file():
        quota_us = int(quota_file.read_text().strip())
        if quota_us > 0:
            return quota_us / int(period_file.read_text().strip())
    return None


def cpu_limit(root: Path = _CGROUP_ROOT) -> float:
    """CPUs this process may use: the cgroup quota (v2 or v1) capped by the CPU affinity mask."""
    available = float(len(os.sched_getaffinity(0)))
    try:
        quota = _quota_from_cgroup(root)
    except (OSError, ValueError):
        quota = None
    return min(available, quota) if quota else available


def plan_workers(limit: float, workers: int, threads: int) -> tuple[int, int]:
    """Worker processes and onnxruntime threads per worker; 0 in either means "derive it".

    Workers default to one per whole CPU (Python's event loop is single-threaded,
    so processes scale the HTTP side); threads default to the CPUs left per worker.
    """
    whole = max(1, math.floor(limit))
    planned_workers = workers or whole
    planned_threads = threads or max(1, whole // planned_workers)
    return planned_workers, planned_threads
