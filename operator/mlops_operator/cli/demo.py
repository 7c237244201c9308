"""`mlops demo`: the closed MLOps loop on the local cluster (`mlops_operator.demo` plays it)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register"]


def _demo(args: argparse.Namespace) -> int:
    # Imported here: the loop needs the local cluster's extra, which the images do not carry.
    from mlops_operator.demo import run_demo
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
