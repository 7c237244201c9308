"""``mlops rollback``, ``mlops promote``, ``mlops history``, ``mlops approve`` and ``mlops reject``.

Each is one change to one object, made with the caller's own credentials (the
kubeconfig, as kubectl uses it: `session`) so RBAC decides who may do it; the caller's
authenticated user name (asked of the API server with a SelfSubjectReview, so an
impersonated ``--as`` user's) is recorded beside the change, and the operator writes it
into the history.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from mlops_operator.cli.session import Command, add_cluster_flags, run

__all__ = ["live_at", "register"]


def live_at(history: list[dict[str, Any]], moment: datetime) -> dict[str, Any] | None:
    """The history entry that put the version serving at `moment` in place (newest first list)."""
    changes = ("Deploy", "Promote", "Rollback")
    for entry in history:
        if entry.get("action") in changes and datetime.fromisoformat(entry["time"]) <= moment:
            return entry
    return None


async def _mdep(kube: Any, name: str, namespace: str) -> dict[str, Any]:
    from mlops_operator.api.resource import API_VERSION

    result: dict[str, Any] = await kube.get(API_VERSION, "ModelDeployment", name, namespace)
    return result


async def _pin(kube: Any, args: argparse.Namespace, namespace: str, version: int) -> None:
    from mlops_operator.api.metadata import REQUESTED_BY_ANNOTATION
    from mlops_operator.api.resource import API_VERSION

    user = await kube.whoami()
    patch = {
        "metadata": {"annotations": {REQUESTED_BY_ANNOTATION: user}},
        "spec": {"promotion": "Manual", "version": version},
    }
    await kube.patch(API_VERSION, "ModelDeployment", args.name, namespace, patch)
    print(f"modeldeployment/{args.name}: version {version} requested by {user}")


def _previous(status: dict[str, Any]) -> int | None:
    champion = (status.get("champion") or {}).get("version")
    for entry in status.get("history") or []:
        if entry["action"] in ("Deploy", "Promote", "Rollback") and entry["version"] != champion:
            return int(entry["version"])
    return None


async def _rollback(kube: Any, namespace: str, args: argparse.Namespace) -> int:
    status = (await _mdep(kube, args.name, namespace)).get("status") or {}
    version = args.to or _previous(status)
    if version is None:
        print(f"error: modeldeployment/{args.name} has no earlier version in its history;"
              " name one with --to VERSION", file=sys.stderr)  # fmt: skip
        return 1
    await _pin(kube, args, namespace, version)
    return 0


async def _promote(kube: Any, namespace: str, args: argparse.Namespace) -> int:
    from mlops_operator.api.resource import API_VERSION

    mdep = await _mdep(kube, args.name, namespace)
    if args.auto:
        from mlops_operator.api.metadata import REQUESTED_BY_ANNOTATION

        user = await kube.whoami()
        patch = {
            "metadata": {"annotations": {REQUESTED_BY_ANNOTATION: user}},
            "spec": {"promotion": "Auto", "version": None},
        }
        await kube.patch(API_VERSION, "ModelDeployment", args.name, namespace, patch)
        print(f"modeldeployment/{args.name}: promotion Auto, requested by {user}")
        return 0
    version = args.to
    if version is None:
        model = mdep["spec"]["modelName"]
        validated = [
            int(mv["spec"]["version"])
            for mv in await kube.list(API_VERSION, "ModelVersion", namespace)
            if mv["spec"]["modelName"] == model
            and (mv.get("status") or {}).get("phase") == "Validated"
        ]
        if not validated:
            print(f"error: model {model} has no Validated version in {namespace}", file=sys.stderr)
            return 1
        version = max(validated)
    await _pin(kube, args, namespace, version)
    return 0


def _print_history(status: dict[str, Any]) -> None:
    print(f"{'TIME':<21} {'ACTION':<9} {'VERSION':>7}  {'REASON':<16} {'ACTOR':<20} MESSAGE")
    for entry in status.get("history") or []:
        evidence = ", ".join(f"{k}={v:.4g}" for k, v in (entry.get("evidence") or {}).items())
        print(
            f"{entry['time']:<21} {entry['action']:<9} {entry['version']:>7}  "
            f"{entry['reason']:<16} {entry.get('actor', ''):<20} {entry.get('message', '')}"
            + (f" [{evidence}]" if evidence else "")
        )


async def _store_dir(kube: Any, namespace: str, args: argparse.Namespace) -> Path | None:
    """Where the artifact store can be read from this machine: ``--store-dir``, or the claim's
    hostPath/local volume when it exists here (the local cluster keeps PVCs on the host)."""
    if args.store_dir:
        return Path(args.store_dir)
    claim = await kube.get("v1", "PersistentVolumeClaim", args.claim, namespace)
    volume = claim.get("spec", {}).get("volumeName")
    if not volume:
        return None
    spec = (await kube.get("v1", "PersistentVolume", volume)).get("spec", {})
    source = spec.get("hostPath") or spec.get("local") or {}
    path = Path(source["path"]) if source.get("path") else None
    return path if path is not None and path.is_dir() else None


async def _logged_history(
    kube: Any, namespace: str, args: argparse.Namespace
) -> list[dict[str, Any]] | None:
    """Every entry of the audit log, newest first; None (after saying why) when unreadable."""
    from mlops_operator.audit import log_key, read_entries

    key = log_key(namespace, "modeldeployments", args.name)
    if args.store:
        # An object store: one object per entry, read with this machine's credentials.
        from mlops_operator.audit.objects import read_objects
        from mlops_operator.storage import ArtifactStore, StorageError

        try:
            entries, bad = read_objects(ArtifactStore(args.store), key)
        except StorageError as error:
            print(f"error: cannot read the audit log from {args.store}: {error}", file=sys.stderr)
            return None
        if bad:
            print(
                f"warning: {bad} audit object(s) under {args.store} did not parse", file=sys.stderr
            )
        return [entry.model_dump(mode="json") for entry in reversed(entries)]
    root = await _store_dir(kube, namespace, args)
    if root is None:
        print(f"error: the artifact claim {args.claim} of {namespace} is not readable from this"
              " machine; pass --store-dir with the store mounted here, or run"
              f" `python -m mlops_operator.audit show --key {key}` in a pod that mounts it"
              " (MLOPS_STORE_URI=file://<mount>)", file=sys.stderr)  # fmt: skip
        return None
    path = root / key
    if not path.exists():
        print(f"error: {path} does not exist: no decision of modeldeployment/{args.name}"
              " has been written to the audit log yet", file=sys.stderr)  # fmt: skip
        return None
    entries, bad = read_entries(path)
    if bad:
        print(f"warning: {bad} line(s) of {path} did not parse (torn by a crash?)", file=sys.stderr)
    return [entry.model_dump(mode="json") for entry in reversed(entries)]


async def _history(kube: Any, namespace: str, args: argparse.Namespace) -> int:
    if args.full:
        history = await _logged_history(kube, namespace, args)
        if history is None:
            return 1
    else:
        status = (await _mdep(kube, args.name, namespace)).get("status") or {}
        history = status.get("history") or []
    if args.at is None:
        _print_history({"history": history})
        return 0
    entry = live_at(history, datetime.fromisoformat(args.at))
    if entry is None:
        print(f"no version of modeldeployment/{args.name} was live at {args.at}"
              " (or the history no longer reaches back that far)")  # fmt: skip
        return 1
    print(f"version {entry['version']} was live at {args.at}: {entry['action']} at"
          f" {entry['time']} by {entry.get('actor', '')}, {entry['reason']}:"
          f" {entry.get('message', '')}")  # fmt: skip
    return 0


async def _review(kube: Any, namespace: str, args: argparse.Namespace) -> int:
    """Approve, reject, or (``approve --revoke``) withdraw an approval, in the caller's name.

    The API server admits the change only from a user holding the verb, and only when the
    annotation names that user (the chart's admission policy): the name is the caller's own.
    """
    from mlops_operator.api.metadata import (
        APPROVED_BY_ANNOTATION,
        REJECTED_BY_ANNOTATION,
        REVOKED_BY_ANNOTATION,
    )
    from mlops_operator.api.resource import API_VERSION

    user = await kube.whoami()
    if args.command == "reject":
        annotations: dict[str, str | None] = {REJECTED_BY_ANNOTATION: user}
        done = "rejected"
    elif args.revoke:
        annotations = {APPROVED_BY_ANNOTATION: None, REVOKED_BY_ANNOTATION: user}
        done = "approval revoked"
    else:
        annotations = {APPROVED_BY_ANNOTATION: user, REVOKED_BY_ANNOTATION: None}
        done = "approved"
    patch = {"metadata": {"annotations": annotations}}
    await kube.patch(API_VERSION, "ModelVersion", args.name, namespace, patch)
    print(f"modelversion/{args.name} {done} by {user}")
    return 0


def register(subparsers: Any) -> None:
    """Add the rollout commands to ``mlops``."""
    specs: list[tuple[str, str, Command]] = [
        ("rollback", "serve an earlier version of a ModelDeployment (one change)", _rollback),
        ("promote", "pin a newer version of a ModelDeployment, or return it to Auto", _promote),
        ("history", "promotions and rollbacks of a ModelDeployment, with evidence", _history),
        ("approve", "approve a ModelVersion held for approval (or --revoke it)", _review),
        ("reject", "reject a ModelVersion for good (a deployment withdraws it)", _review),
    ]
    for name, text, command in specs:
        parser: argparse.ArgumentParser = subparsers.add_parser(name, help=text, description=text)
        what = "MODELVERSION" if name in ("approve", "reject") else "MODELDEPLOYMENT"
        parser.add_argument("name", metavar=what)
        add_cluster_flags(parser)
        if name in ("rollback", "promote"):
            parser.add_argument("--to", type=int, metavar="VERSION", help="version to serve")
        if name == "rollback":
            parser.epilog = "Without --to: the version that served before the current champion."
        if name == "promote":
            parser.add_argument("--auto", action="store_true", help="return to promotion: Auto")
        if name == "approve":
            parser.add_argument(
                "--revoke", action="store_true", help="withdraw an approval given before"
            )
        if name == "history":
            parser.add_argument(
                "--at", metavar="TIME", help="which version was live at TIME (RFC 3339), and why"
            )
            parser.add_argument(
                "--full",
                action="store_true",
                help="every decision, from the audit log in the artifact store (status keeps"
                " only historyLimit entries); the store must be readable here",
            )
            parser.add_argument(
                "--store-dir", metavar="DIR", help="the artifact store's root, mounted here"
            )
            parser.add_argument(
                "--store",
                metavar="URI",
                help="the artifact store's object-store root (the operator's --artifact-uri,"
                " e.g. s3://bucket/prefix), read with this machine's credentials (AWS_*)",
            )
            parser.add_argument(
                "--claim",
                default="mlops-artifacts",
                help="the artifact PVC, whose hostPath or local volume is read when it is on"
                " this machine (default: mlops-artifacts)",
            )
        parser.set_defaults(func=run(name, command))
