"""The one helper of the API tests: example documents, edited, submitted to the API server."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from tests.kube import kubectl

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "manifests" / "examples"
EXAMPLE_FILES = sorted(p.relative_to(EXAMPLES).as_posix() for p in EXAMPLES.rglob("*.yaml"))


def example(name: str) -> dict[str, Any]:
    """A fresh copy of an example document (``iris/driftpolicy.yaml`` …), without its namespace."""
    document: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    document["metadata"].pop("namespace", None)
    return copy.deepcopy(document)


def _keys(path: str) -> list[str | int]:
    return [int(k) if k.isdigit() else k for k in path.split(".")]


def edit(document: dict[str, Any], path: str, value: Any = None, *, delete: bool = False) -> None:
    """Set (or delete) the value at a dotted path such as ``spec.rollout.canary.steps.0.weight``."""
    *parents, last = _keys(path)
    node: Any = document
    for key in parents:
        node = node[key]
    if delete:
        del node[last]
    else:
        node[last] = value


def submit(kubeconfig: Path, namespace: str, document: dict[str, Any], *, dry_run: bool) -> str:
    """Create ``document`` with strict field validation; the API server's error, or ``""``.

    Every API test goes through here, so all of them take the path a user's
    ``kubectl create`` takes.
    """
    args = ["create", "-n", namespace, "--validate=strict", "-f", "-"]
    if dry_run:
        args.append("--dry-run=server")
    proc = kubectl(kubeconfig, *args, stdin=yaml.safe_dump(document), check=False)
    return proc.stderr.strip() if proc.returncode else ""
