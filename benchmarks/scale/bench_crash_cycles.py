"""Operator crash cycles at length: the reliability test's cycles, run N times (default 20).

Runs ``tests/integration/reliability/test_operator_crashes.py`` on the local
cluster (kept running) with ``MLOPS_RELIABILITY_CYCLES=N`` and prints what it
recorded: cycles, kills by signal, duplicate Jobs and ModelVersions, duration.

    .venv/bin/python benchmarks/scale/bench_crash_cycles.py --cycles 20
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEST = "tests/integration/reliability/test_operator_crashes.py"


def main() -> int:
    """Run the cycles and print the figures; the test's exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        env = {
            **os.environ,
            "MLOPS_KEEP_CLUSTER": "1",
            "MLOPS_RELIABILITY_CYCLES": str(args.cycles),
            "MLOPS_RELIABILITY_REPORT": str(report),
        }
        command = [sys.executable, "-m", "pytest", TEST, "-q", "-p", "no:cacheprovider"]
        result = subprocess.run(command, cwd=REPO, env=env, check=False)
        if report.exists():
            figures = json.loads(report.read_text())
            print(
                f"cycles {figures['cycles']}, kills {figures['kills']}, duplicate Jobs"
                f" {figures['duplicate_jobs']}, duplicate ModelVersions"
                f" {figures['duplicate_versions']}, {figures['seconds']} s"
            )
        return result.returncode


if __name__ == "__main__":
    sys.exit(main())
