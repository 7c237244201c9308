"""The `mlops` command (also installed as the kubectl plugin `kubectl-mlops`).

Each area of the project contributes its own subcommands through a
``register(subparsers)`` function, so this module only assembles them and
stays free of heavy imports: `mlops cluster env` must answer instantly.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from mlops_operator import __version__

__all__ = ["main"]

# Modules that add subcommands; each defines `register(subparsers)`.
_COMMAND_MODULES = (
    "mlops_operator.console.commands",
    "mlops_operator.crdgen.commands",
    "mlops_operator.demo",
    "mlops_operator.imagebuild.commands",
    "mlops_operator.localcluster.commands",
    "mlops_operator.plugin.commands",
    "mlops_operator.reproduce",
    "mlops_operator.rollout_commands",
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
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `mlops` console script."""
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
