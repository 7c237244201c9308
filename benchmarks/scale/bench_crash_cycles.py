"""Operator crash cycles at length: a reliability test's cycles, run N times (default 20).

Runs one test of ``tests/integration/reliability/test_operator_crashes.py`` on
the local cluster (kept running) and prints what it recorded:

- default: training cycles (``MLOPS_RELIABILITY_CYCLES=N``) — cycles, kills by
  signal, duplicate Jobs and ModelVersions, duration;
- ``--full``: full cycles, train → version → validate → canary → promote
  (``MLOPS_RELIABILITY_FULL_CYCLES=N``), the operator stopped in every phase, or
  with ``--seed S`` at random moments — cycles, kills by signal and by phase,
  duplicates found, versions made, requests through the Service, duration.

    .venv/bin/python benchmarks/scale/bench_crash_cycles.py --cycles 20
    .venv/bin/python benchmarks/scale/bench_crash_cycles.py --full --cycles 20 [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TEST = "tests/integration/reliability/test_operator_crashes.py"
TRAINING = f"{TEST}::test_training_cycles_converge_through_operator_crashes"
FULL = f"{TEST}::test_full_cycles_converge_through_operator_crashes"
CYCLE_SECONDS = 150
"""A generous bound on one cycle (a full one took 45 s at load 12 on 2 cores)."""


def _training_figures(figures: dict[str, Any]) -> str:
    return (
        f"cycles {figures['cycles']}, kills {figures['kills']}, duplicate Jobs"
        f" {figures['duplicate_jobs']}, duplicate ModelVersions"
        f" {figures['duplicate_versions']}, {figures['seconds']} s"
    )


def _full_figures(figures: dict[str, Any]) -> str:
    by_phase = "".join(
        f"\n  {phase}: {kills}" for phase, kills in figures["kills_by_phase"].items()
    )
    duplicates = figures.get("duplicates", "not counted")
    return (
        f"full cycles {figures['cycles']} (stops: {figures['stops']}),"
        f" versions made {figures.get('versions', 0)}, {figures['seconds']} s\n"
        f"kills {figures['kills']}{by_phase}\n"
        f"duplicates {duplicates}, most serving Deployments at once"
        f" {figures['most_serving_deployments']}, pod template changes"
        f" {figures['template_changes']}\n"
        f"requests through the Service {figures['requests']}, failed {figures['failed_requests']}"
    )


def main() -> int:
    """Run the cycles and print the figures; the test's exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--full", action="store_true", help="full cycles, through the canary")
    parser.add_argument("--seed", type=int, help="with --full: stop at random moments")
    args = parser.parse_args()
    if args.seed is not None and not args.full:
        parser.error("--seed needs --full")
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        env = {
            **os.environ,
            "MLOPS_KEEP_CLUSTER": "1",
            "MLOPS_RELIABILITY_REPORT": str(report),
            ("MLOPS_RELIABILITY_FULL_CYCLES" if args.full else "MLOPS_RELIABILITY_CYCLES"): str(
                args.cycles
            ),
        }
        if args.seed is not None:
            env["MLOPS_RELIABILITY_SEED"] = str(args.seed)
        test = FULL if args.full else TRAINING
        # The suite's per-test timeout (pyproject) is for its short defaults, not for N cycles.
        timeout = f"--timeout={max(900, CYCLE_SECONDS * args.cycles + 300)}"
        command = [
            sys.executable,
            "-m",
            "pytest",
            test,
            "-q",
            "-s",
            timeout,
            "-p",
            "no:cacheprovider",
        ]
        result = subprocess.run(command, cwd=REPO, env=env, check=False)
        if report.exists():
            figures = json.loads(report.read_text())
            print(_full_figures(figures) if args.full else _training_figures(figures))
        return result.returncode


if __name__ == "__main__":
    sys.exit(main())
