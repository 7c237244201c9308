"""Apply and delete children only when that can change something.

A ModelDeployment ticks every two seconds; applying its Service and Deployments
(and deleting a shadow Service that is not there) on every tick cost 200
deployments about 100 API writes a second while nothing changed. The operator
remembers, per child, what it last applied (a digest of the manifest) or that it
deleted it (`OperatorContext.applied`); the same request within `RESYNC_SECONDS`
is skipped. The memory is a hint: after a restart, or once a minute, the child is
applied again, so a child edited or deleted by hand is put back within a minute.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from mlops_operator.handlers.context import RESYNC_SECONDS, OperatorContext

__all__ = ["RESYNC_SECONDS", "apply", "delete"]

_ABSENT = "absent"


def _key(api_version: str, kind: str, name: str, namespace: str | None) -> str:
    return f"{api_version}/{kind}/{namespace or ''}/{name}"


async def apply(context: OperatorContext, manifest: Mapping[str, Any], *, exists: bool) -> None:
    """Server-side apply `manifest`, unless it was applied unchanged within the resync period.

    `exists`: whether the caller saw the child in its cache; a child it did not see is
    always applied (someone may have deleted it).
    """
    meta = manifest["metadata"]
    key = _key(manifest["apiVersion"], manifest["kind"], meta["name"], meta.get("namespace"))
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
    if exists and context.applied.get(key) == digest:
        return
    await context.kube.apply(manifest)
    context.applied.put(key, digest)


async def delete(
    context: OperatorContext, api_version: str, kind: str, name: str, namespace: str | None
) -> None:
    """Delete the child unless it was found gone (or deleted) within the resync period."""
    key = _key(api_version, kind, name, namespace)
    if context.applied.get(key) == _ABSENT:
        return
    await context.kube.delete(api_version, kind, name, namespace)
    context.applied.put(key, _ABSENT)
