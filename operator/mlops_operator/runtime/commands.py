"""`mlops operator run`: the operator in the foreground (what its container runs).

Every flag maps onto a field of `OperatorSettings` and wins over the matching
``MLOPS_*`` variable; flags left out fall back to the variables, then the defaults.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops_operator.runtime.settings import OperatorSettings

__all__ = ["register", "settings_from"]


def settings_from(args: argparse.Namespace) -> OperatorSettings:
    """The operator's settings: the flags given in `args` over the environment."""
    from mlops_operator.runtime.settings import OperatorSettings

    fields = OperatorSettings.model_fields
    given = {name: value for name, value in vars(args).items() if name in fields}
    overrides = {name: value for name, value in given.items() if value not in (None, [])}
    if args.all_namespaces:
        overrides["namespaces"] = []
    return OperatorSettings(**overrides)


def _run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from mlops_operator.runtime import main

    try:
        settings = settings_from(args)
    except ValidationError as exc:
        print(f"mlops operator run: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    return main.run(settings)


def register(subparsers: Any) -> None:
    """Add `mlops operator ...` to the CLI."""
    operator = subparsers.add_parser("operator", help="the Kubernetes operator")
    actions = operator.add_subparsers(dest="action", metavar="ACTION", required=True)
    run = actions.add_parser(
        "run",
        help="run the operator in the foreground (stops on SIGTERM/SIGINT)",
        description="Run the operator. Each flag overrides its MLOPS_* environment variable.",
    )
    scope = run.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        dest="namespaces",
        action="append",
        metavar="NS",
        help="watch this namespace (repeatable; MLOPS_NAMESPACES=a,b); default: cluster-wide",
    )
    scope.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        help="watch every namespace, even if MLOPS_NAMESPACES is set",
    )
    run.add_argument(
        "--kubeconfig",
        type=Path,
        metavar="FILE",
        help="this kubeconfig file alone (default: KUBECONFIG's files merged, ~/.kube/config,"
        " or in a pod its ServiceAccount); exec credential plugins included",
    )
    run.add_argument(
        "--context",
        dest="kube_context",
        metavar="NAME",
        help="the kubeconfig context to run as (default: its current-context)",
    )
    run.add_argument("--bind-address", help="address of the probe and metrics endpoints")
    run.add_argument("--liveness-port", type=int, help="port of GET /healthz (default 8081)")
    run.add_argument("--metrics-port", type=int, help="port of GET /metrics (default 8080)")
    run.add_argument("--log-format", choices=["json", "text"], help="default json")
    run.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run.add_argument("--artifact-pvc", help="PVC of the artifact store (default mlops-artifacts)")
    run.add_argument("--artifact-uri", help="object-store root for artifacts instead of a PVC")
    run.add_argument(
        "--artifact-credentials-secret",
        help="Secret whose keys become the workload pods' environment (object-store credentials)",
    )
    run.add_argument("--trainer-image", help="image of training pods")
    run.add_argument("--server-image", help="image of inference-server pods")
    run.add_argument("--operator-image", help="this operator's own image")
    run.add_argument(
        "--peering", help="KopfPeering to announce this operator in; default: standalone"
    )
    run.add_argument(
        "--leader-election",
        action="store_true",
        default=None,
        help="run Kopf only while holding the Lease (replicas: one leads, the others stand by)",
    )
    run.add_argument("--leader-election-lease", help="name of the Lease (default mlops-operator)")
    run.add_argument(
        "--leader-election-namespace", help="namespace of the Lease (default: the pod's own)"
    )
    run.set_defaults(func=_run)
