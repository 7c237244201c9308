"""Drift onset to retrain trigger, and to the new version serving, on the local cluster.

    python benchmarks/drift/bench_loop.py              # 1 run
    python benchmarks/drift/bench_loop.py --runs 3

Runs the demo's loop (`mlops_operator.demo.loop`, the same stages as `mlops demo`
and tests/e2e/test_loop.py) ``--runs`` times, each in a fresh namespace
``mlops-bench-<random>`` (its objects removed while the operator runs, then the namespace deleted), and prints per run: onset -> retrain
TrainingJob created (its creationTimestamp, 1 s resolution), -> v2 validated,
-> first answer from v2 (canary), -> v2 promoted, the whole loop, and the
DriftPolicy's evaluations seen between the onset and the retrain (offset from
the onset and the trigger values). Target for onset -> trigger: one evaluation
interval (10 s in the example) plus one scrape interval (5 s). Needs the local
cluster running; never stops it. Record the figures in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from mlops_operator.demo.loop import Demo

_MARKS = (
    ("retrain triggered", "retrain_triggered"),
    ("v2 validated", "v2_validated"),
    ("v2 serving (canary)", "serving_v2"),
    ("v2 promoted", "promoted"),
)


def _run(index: int, out: Path) -> dict[str, float]:
    demo = Demo(namespace=f"mlops-bench-{uuid.uuid4().hex[:6]}", seed=7 + index, out=out)
    try:
        demo.start()
        began = time.time()
        demo.train_v1()
        demo.deploy()
        demo.watch_reference(evaluations=2)
        shift = demo.shift()
        demo.retrain()
        demo.rollout()
        demo.recover(evaluations=1)
    finally:
        demo.finish(remove=True)
        if demo.kube is not None:
            demo.kube.run("delete", "namespace", demo.namespace, "--wait=false", check=False)
    onset = demo.marks["drift_onset"]
    figures = {label: demo.marks[mark] - onset for label, mark in _MARKS}
    figures["whole loop"] = demo.marks["recovered"] - began
    print(f"run {index}: " + ", ".join(f"{k} {v:.1f} s" for k, v in figures.items()), flush=True)
    print(
        f"  evaluations before the retrain (offset from onset: values): {shift.facts['evaluations']}"
    )
    print(f"  reason: {shift.facts['reason'][:200]}")
    return figures


def main() -> None:
    """Run the loop and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    print(
        f"{platform.node()}: {platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as out:
        runs = [_run(index, Path(out)) for index in range(1, args.runs + 1)]
    print("summary (median over runs, min-max):")
    for label in runs[0]:
        values = [r[label] for r in runs]
        print(f"  onset -> {label:<22} {statistics.median(values):6.1f} s ({min(values):.1f}-{max(values):.1f})"
              if label != "whole loop" else
              f"  {label:<32} {statistics.median(values):6.1f} s ({min(values):.1f}-{max(values):.1f})")  # fmt: skip


if __name__ == "__main__":
    main()
