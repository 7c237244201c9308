"""A serving pod killed under load, at length: the reliability test's kills, run N rounds.

Runs ``tests/integration/reliability/test_serving_faults.py`` on the local cluster
(kept running) with ``MLOPS_SERVING_FAULT_ROUNDS=N`` (each round deletes one of the
two serving pods, then SIGKILLs one) and ``MLOPS_SERVING_FAULT_CLIENTS``, and prints
per kind of kill: requests sent, failed for a plain client, for a client retrying
once, for a client retrying with back-off, p99 latency, and how long after each
kill plain clients still failed.

    .venv/bin/python benchmarks/serving/bench_serving_faults.py --rounds 5 --clients 8
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
TEST = "tests/integration/reliability/test_serving_faults.py"


def main() -> int:
    """Run the rounds and print the figures; the test's exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        env = {
            **os.environ,
            "MLOPS_KEEP_CLUSTER": "1",
            "MLOPS_SERVING_FAULT_ROUNDS": str(args.rounds),
            "MLOPS_SERVING_FAULT_CLIENTS": str(args.clients),
            "MLOPS_RELIABILITY_REPORT": str(report),
        }
        command = [sys.executable, "-m", "pytest", TEST, "-q", "-p", "no:cacheprovider"]
        result = subprocess.run(command, cwd=REPO, env=env, check=False)
        if report.exists():
            figures = json.loads(report.read_text())
            print(f"{args.rounds} rounds, {args.clients} clients")
            for kind, rounds in figures.items():
                windows = [
                    r["failures_until_s"] for r in rounds if r["failures_until_s"] is not None
                ]
                p99s = [r["p99_ms"] for r in rounds if r["p99_ms"] is not None]
                print(
                    f"{kind}: sent {sum(r['sent'] for r in rounds)}, failed: plain"
                    f" {sum(r['failed_plain'] for r in rounds)}, one retry"
                    f" {sum(r['failed_one_retry'] for r in rounds)}, with back-off"
                    f" {sum(r['failed_with_backoff'] for r in rounds)}; HTTP errors"
                    f" {sum(r['http_errors'] for r in rounds)}; worst p99"
                    f" {max(p99s, default=0):.1f} ms; last plain failure after each kill (s):"
                    f" {', '.join(f'{w:.2f}' for w in windows) or 'none'}"
                )
        return result.returncode


if __name__ == "__main__":
    sys.exit(main())
