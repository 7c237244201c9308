"""`mlops cluster ...` subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

__all__ = ["register"]


def _cluster(args: argparse.Namespace) -> Any:
    try:
        from mlops_operator.localcluster.cluster import LocalCluster
    except ModuleNotFoundError as error:
        # The images and `pip install mlops-operator[operator]` do not carry the local cluster.
        raise SystemExit(
            f"mlops cluster needs the localcluster extra ({error.name} is missing):"
            " pip install 'mlops-operator[localcluster]'"
        ) from error
    return LocalCluster(args.state_dir)


def _build(args: argparse.Namespace) -> int:
    from mlops_operator.localcluster import binaries

    extra = (binaries.OBJECT_STORE,) if args.object_store else ()
    binaries.ensure_binaries((*binaries.DEFAULT_COMPONENTS, *extra))
    return 0


def _up(args: argparse.Namespace) -> int:
    _cluster(args).up(object_store=args.object_store)
    return _status(args)


def _down(args: argparse.Namespace) -> int:
    stopped = _cluster(args).down()
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def _status(args: argparse.Namespace) -> int:
    statuses = _cluster(args).status()
    if getattr(args, "output", None) == "json":
        print(json.dumps([asdict(s) for s in statuses], indent=2))
    else:
        for s in statuses:
            state = "healthy" if s.healthy else ("running" if s.pid else "stopped")
            print(f"{s.name:<26} {state:<8} {'pid ' + str(s.pid) if s.pid else ''}")
    return 0 if all(s.healthy for s in statuses) else 1


def _env(args: argparse.Namespace) -> int:
    sys.stdout.write(_cluster(args).env_script())
    return 0


def _logs(args: argparse.Namespace) -> int:
    cluster = _cluster(args)
    path: Path | None = cluster.log_file(args.name)
    if path is None or not path.exists():
        path = cluster.pod_log_file(args.namespace, args.name, args.container)
    if path is None or not path.exists():
        print(
            f"no logs for {args.name!r} (neither a component nor a pod in namespace "
            f"{args.namespace!r} on the local node)",
            file=sys.stderr,
        )
        return 1
    lines = path.read_text(errors="replace").splitlines()
    print("\n".join(lines[-args.tail :] if args.tail else lines))
    return 0


def register(subparsers: Any) -> None:
    """Add `mlops cluster ...` to the CLI."""
    cluster = subparsers.add_parser("cluster", help="the local cluster (real control plane)")
    cluster.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="state directory (default: $MLOPS_CLUSTER_DIR or ~/.local/state/mlops-operator/cluster)",
    )
    actions = cluster.add_subparsers(dest="action", metavar="ACTION", required=True)
    object_store = {
        "action": "store_true",
        "help": "the S3 object store too (versitygw on the bridge; see `mlops cluster env`)",
    }
    build = actions.add_parser("build", help="build and cache the binaries (first run only)")
    build.add_argument("--object-store", **object_store)
    build.set_defaults(func=_build)
    up = actions.add_parser("up", help="start the cluster (idempotent)")
    up.add_argument("--object-store", **object_store)
    up.set_defaults(func=_up)
    actions.add_parser("down", help="stop everything the cluster started").set_defaults(func=_down)
    status = actions.add_parser("status", help="what runs and whether it is healthy")
    status.add_argument("-o", "--output", choices=["text", "json"], default="text")
    status.set_defaults(func=_status)
    actions.add_parser("env", help='shell exports: eval "$(mlops cluster env)"').set_defaults(
        func=_env
    )
    logs = actions.add_parser("logs", help="a component's or a pod's log")
    logs.add_argument("name", help="a component (e.g. kube-apiserver) or a pod on the local node")
    logs.add_argument("-n", "--namespace", default="default", help="the pod's namespace")
    logs.add_argument("-c", "--container", default=None, help="the container (default: the first)")
    logs.add_argument("--tail", type=int, default=0, help="only the last N lines")
    logs.set_defaults(func=_logs)
