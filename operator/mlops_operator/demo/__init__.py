"""`mlops demo`: the main job — the closed MLOps loop, end to end, on the local cluster.

It brings the local cluster up, installs the CRDs, runs the operator, and plays
the iris loop (:mod:`.loop`): train v1, validate, deploy, serve traffic like the
training data (no retrain), re-calibrate the petal sensor (drift), retrain on
the logged and labelled rows, validate v2, canary, promote, recover. It ends
with a summary and an HTML report with plots (:mod:`.report`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_operator.demo.kube import DemoError

if TYPE_CHECKING:
    # The loop needs the local cluster's extra (PyYAML): imported when the demo runs, so that
    # `mlops --help` works in the images, which do not carry it.
    from mlops_operator.demo.loop import Demo

__all__ = ["register", "run_demo"]


def run_demo(demo: Demo, report: Path) -> int:
    """Every stage in order, then the summary and the report; 0 when the loop closed."""
    from mlops_operator.demo.report import summarize, write_report

    try:
        demo.start()
        origin = time.time()
        v1 = demo.train_v1()
        demo.deploy()
        demo.watch_reference()
        demo.shift()
        v2 = demo.retrain()
        _reproduce(demo, v2.facts["model_version"])
        demo.rollout()
        recovered = demo.recover()
    except DemoError as error:
        print(f"demo failed: {error}", file=sys.stderr)
        demo.finish()
        return 1
    demo.finish()
    assert demo.traffic is not None
    series = demo.psi_series()
    versions = {
        v1.facts["model_version"]: {"accuracy": v1.facts["metrics"].get("accuracy"), "data": v1.facts["dataset"]},
        v2.facts["model_version"]: {"accuracy": v2.facts["metrics"].get("accuracy"),
                                    "data": (v2.facts.get("dataset") or {}).get("uri")},
    }  # fmt: skip
    summary = summarize(demo.marks, demo.traffic.observations, series, versions,
                        recovered.facts["retrains"], origin)  # fmt: skip
    shift = next(s for s in demo.stages if s.name == "shift")
    lineage = [
        [v1.facts["dataset"], "iris-initial", v1.facts["model_version"], "iris"],
        [(v2.facts.get("dataset") or {}).get("uri", ""), shift.facts["training_job"], v2.facts["model_version"], "iris"],
    ]  # fmt: skip
    parent = v2.facts.get("parent_version")
    parents = {v2.facts["model_version"]: parent} if parent else {}
    path = write_report(report, summary, series, demo.traffic.observations, demo.marks, lineage,
                        origin, demo.stages, parents)  # fmt: skip
    print("==> summary", flush=True)
    for line in summary.lines():
        print(f"    {line}")
    print(f"==> report: {path.resolve()}")
    print(f"==> look around: eval \"$({sys.argv[0]} cluster env)\"; kubectl get mlops -n {demo.namespace};"
          f" {sys.argv[0]} history iris -n {demo.namespace}")  # fmt: skip
    print(f"==> see it in a browser: eval \"$({sys.argv[0]} cluster env)\"; {sys.argv[0]} console"
          " (then open http://127.0.0.1:8090/)")  # fmt: skip
    print(f"==> the cluster stays up; `{sys.argv[0]} cluster down` stops it")
    return 0


def _reproduce(demo: Demo, version: str) -> None:
    """Rebuild `version` from its lineage, as anyone could; a mismatch fails the demo."""
    print(f"==> mlops reproduce {version}: the original data again, the window from its snapshot",
          flush=True)  # fmt: skip
    result = demo.reproduce(version)
    for line in result.stdout.splitlines():
        print(f"    {line}")
    if result.returncode != 0:
        raise DemoError(f"mlops reproduce {version} exited {result.returncode}: {result.stderr}")


def _demo(args: argparse.Namespace) -> int:
    from mlops_operator.demo.loop import Demo

    demo = Demo(namespace=args.namespace, seed=args.seed, out=args.report.parent,
                object_store=args.object_store)  # fmt: skip
    return run_demo(demo, args.report)


def register(subparsers: Any) -> None:
    """Add `mlops demo` to the CLI."""
    parser = subparsers.add_parser("demo", help="the closed MLOps loop on the local cluster")
    parser.add_argument("--namespace", default="mlops-demo", help="namespace to run in (recreated)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the traffic")
    parser.add_argument("--report", type=Path, default=Path("out/demo-report.html"),
                        help="where the HTML report goes (plots beside it)")  # fmt: skip
    parser.add_argument("--object-store", action="store_true",
                        help="run the loop on the local cluster's S3 object store, not a PVC")  # fmt: skip
    parser.set_defaults(func=_demo)
