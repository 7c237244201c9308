"""CPU sizing from the cgroup (v2 and v1), never from the host's core count."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlops_operator.serving.cpu import cpu_limit, plan_workers

HOST_CPUS = len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "150000 100000\n"}, min(HOST_CPUS, 1.5)),
        ({"cpu.max": "max 100000\n"}, HOST_CPUS),
        ({"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 0.5),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, HOST_CPUS),
        ({}, HOST_CPUS),
    ],
)
def test_cpu_limit_reads_the_cgroup(tmp_path: Path, files: dict[str, str], expected: float) -> None:
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    assert cpu_limit(tmp_path) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("limit", "workers", "threads", "expected"),
    [
        (0.5, 0, 0, (1, 1)),
        (1.0, 0, 0, (1, 1)),
        (2.0, 0, 0, (2, 1)),
        (4.5, 0, 0, (4, 1)),
        (4.0, 1, 0, (1, 4)),
        (4.0, 2, 0, (2, 2)),
        (4.0, 0, 3, (4, 3)),
    ],
)
def test_plan_workers(limit: float, workers: int, threads: int, expected: tuple[int, int]) -> None:
    assert plan_workers(limit, workers, threads) == expected
