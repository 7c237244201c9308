"""`mlops status` and `mlops lineage MODELVERSION` (also `kubectl mlops ...`).

Both read through the API with the caller's kubeconfig (`session`: contexts, exec plugins,
impersonation) and print for people by default, or JSON (``-o json``) for scripts; `views`
turns the objects into rows and trees.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from mlops_operator.cli.session import add_cluster_flags, run

if TYPE_CHECKING:
    from mlops_operator.k8s import KubeClient

__all__ = ["register"]

_KINDS = ("TrainingJob", "ModelVersion", "ModelDeployment", "DriftPolicy")


async def _status(kube: KubeClient, namespace: str, args: argparse.Namespace) -> int:
    from mlops_operator.api.resource import API_VERSION
    from mlops_operator.cli import views

    where = None if args.all_namespaces else namespace
    objects = [await kube.list(API_VERSION, kind, where) for kind in _KINDS]
    rows = views.model_statuses(*objects)
    if args.output == "json":
        print(json.dumps({"models": rows}, indent=2))
    elif not rows:
        print(f"No models in {'any namespace' if where is None else f'namespace {where}'}.")
    else:
        columns = views.STATUS_COLUMNS if where is None else views.STATUS_COLUMNS[1:]
        print(views.format_table(rows, columns))
    return 0


async def _get(kube: KubeClient, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    from mlops_operator.api.resource import API_VERSION
    from mlops_operator.k8s import NotFound

    try:
        return await kube.get(API_VERSION, kind, name, namespace)
    except NotFound:
        return None


async def _lineage(kube: KubeClient, namespace: str, args: argparse.Namespace) -> int:
    import sys

    from mlops_operator.api.resource import API_VERSION
    from mlops_operator.cli import views

    version = await _get(kube, "ModelVersion", args.model_version, namespace)
    if version is None:
        print(
            f"mlops lineage: ModelVersion {args.model_version!r} not found in namespace"
            f" {namespace}; list them with `kubectl get mv`",
            file=sys.stderr,
        )
        return 1
    job_name = (version["spec"].get("lineage") or {}).get("trainingJob")
    job = await _get(kube, "TrainingJob", job_name, namespace) if job_name else None
    deployments = await kube.list(API_VERSION, "ModelDeployment", namespace)
    if args.output == "json":
        print(json.dumps(views.lineage_json(version, job, deployments), indent=2))
    else:
        print(views.render_tree(views.lineage(version, job, deployments)))
    return 0


def _output(parser: argparse.ArgumentParser) -> None:
    add_cluster_flags(parser)
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
    _output(status)
    status.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    status.set_defaults(func=run("status", _status))
    lineage = subparsers.add_parser(
        "lineage",
        help="where a ModelVersion comes from and where it serves, as a tree",
        description="dataset → TrainingJob → ModelVersion → ModelDeployment, from the"
        " version's recorded lineage and the deployments' status.",
    )
    lineage.add_argument("model_version", metavar="MODELVERSION", help="ModelVersion name")
    _output(lineage)
    lineage.set_defaults(func=run("lineage", _lineage))
