"""`mlops status` and `mlops lineage MODELVERSION` (also `kubectl mlops ...`).

Both read through kubectl and print for people by default, or JSON (``-o json``) for scripts.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["register"]

_KINDS = (
    "trainingjobs.mlops.dev",
    "modelversions.mlops.dev",
    "modeldeployments.mlops.dev",
    "driftpolicies.mlops.dev",
)


def _kubectl(args: argparse.Namespace) -> Any:
    from mlops_operator.plugin.kubectl import Kubectl, find_kubectl

    global_args = [f"--kubeconfig={args.kubeconfig}"] if args.kubeconfig else []
    global_args += [f"--context={args.context}"] if args.context else []
    return Kubectl(find_kubectl(), tuple(global_args))


def _namespace(args: argparse.Namespace) -> str | None:
    return None if args.all_namespaces else args.namespace


def _status(args: argparse.Namespace) -> int:
    from mlops_operator.plugin import views
    from mlops_operator.plugin.kubectl import KubectlError

    kubectl = _kubectl(args)
    namespace = _namespace(args)
    try:
        objects = [kubectl.list(kind, namespace) for kind in _KINDS]
    except KubectlError as exc:
        print(f"mlops status: {exc}", file=sys.stderr)
        return 1
    rows = views.model_statuses(*objects)
    if args.output == "json":
        print(json.dumps({"models": rows}, indent=2))
    elif not rows:
        where = "any namespace" if namespace is None else f"namespace {namespace or '(current)'}"
        print(f"No models in {where}.")
    else:
        columns = views.STATUS_COLUMNS if namespace is None else views.STATUS_COLUMNS[1:]
        print(views.format_table(rows, columns))
    return 0


def _lineage(args: argparse.Namespace) -> int:
    from mlops_operator.plugin.kubectl import KubectlError

    try:
        return _print_lineage(args)
    except KubectlError as exc:
        print(f"mlops lineage: {exc}", file=sys.stderr)
        return 1


def _print_lineage(args: argparse.Namespace) -> int:
    from mlops_operator.plugin import views

    kubectl = _kubectl(args)
    version = kubectl.get("modelversions.mlops.dev", args.model_version, args.namespace)
    if version is None:
        print(
            f"mlops lineage: ModelVersion {args.model_version!r} not found"
            f" in namespace {args.namespace or '(current)'}; list them with `kubectl get mv`",
            file=sys.stderr,
        )
        return 1
    namespace = version["metadata"]["namespace"]
    job_name = (version["spec"].get("lineage") or {}).get("trainingJob")
    job = kubectl.get("trainingjobs.mlops.dev", job_name, namespace) if job_name else None
    deployments = kubectl.list("modeldeployments.mlops.dev", namespace)
    if args.output == "json":
        print(json.dumps(views.lineage_json(version, job, deployments), indent=2))
    else:
        print(views.render_tree(views.lineage(version, job, deployments)))
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig context's)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: kubectl's)")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    parser.add_argument(
        "-o", "--output", choices=["text", "json"], default="text", help="default: text"
    )


def register(subparsers: Any) -> None:
    """Add `status` and `lineage`."""
    status = subparsers.add_parser(
        "status",
        help="every model at a glance: versions, what serves, last training, drift",
        description="One line per model: its versions, the champion and challenger of its"
        " ModelDeployment, its last TrainingJob and its DriftPolicy's state.",
    )
    _common(status)
    status.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    status.set_defaults(func=_status)
    lineage = subparsers.add_parser(
        "lineage",
        help="where a ModelVersion comes from and where it serves, as a tree",
        description="dataset → TrainingJob → ModelVersion → ModelDeployment, from the"
        " version's recorded lineage and the deployments' status.",
    )
    lineage.add_argument("model_version", metavar="MODELVERSION", help="ModelVersion name")
    _common(lineage)
    lineage.set_defaults(func=_lineage)
