"""``mlops crds``: print every CRD as one YAML stream (``mlops crds | kubectl apply -f -``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register"]


def _print_crds(_: argparse.Namespace) -> int:
    # Imported here so that other subcommands start without pydantic's schema machinery.
    from mlops_operator.crdgen.render import crd_stream

    sys.stdout.write(crd_stream())
    return 0


def register(subparsers: Any) -> None:
    """Add the ``crds`` subcommand."""
    parser = subparsers.add_parser(
        "crds",
        help="print the CustomResourceDefinitions as one YAML stream",
        description="Print every CRD of mlops-operator, generated from the API models,"
        " as one YAML stream: `mlops crds | kubectl apply --server-side -f -`.",
    )
    parser.set_defaults(func=_print_crds)
