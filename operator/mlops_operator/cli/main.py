"""The `mlops` command (also installed as the kubectl plugin `kubectl-mlops`).

Every command a person runs lives in this package, each module adding its subcommands
through ``register(subparsers)``; the three programs the containers run (`mlops operator
run`, `mlops train`, `mlops serve`) register theirs beside the settings their flags fill
(`runtime`, `trainer`, `serving`). This module only assembles them and stays free of heavy
imports: `mlops cluster env` must answer instantly. The cluster flags are accepted
before the command too (`session`).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

from mlops_operator import __version__
from mlops_operator.cli.session import add_global_flags, merge_global_flags

__all__ = ["build_parser", "main"]

# Modules that add subcommands; each defines `register(subparsers)`.
_COMMAND_MODULES = (
    "mlops_operator.cli.console",
    "mlops_operator.cli.reproduce",
    "mlops_operator.cli.rollout",
    "mlops_operator.cli.status",
    "mlops_operator.cli.crds",
    "mlops_operator.cli.demo",
    "mlops_operator.cli.images",
    "mlops_operator.cli.cluster",
    # The programs the containers run register beside the settings their flags fill.
    "mlops_operator.runtime.commands",
    "mlops_operator.serving.commands",
    "mlops_operator.trainer.commands",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every area's subcommands."""
    parser = argparse.ArgumentParser(
        prog="mlops", description="The MLOps loop as Kubernetes resources."
    )
    parser.add_argument("--version", action="version", version=f"mlops-operator {__version__}")
    add_global_flags(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `mlops` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    merge_global_flags(parser, args)
    try:
        result: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return result
