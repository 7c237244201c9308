"""Apply and delete children: only the ones this owner controls, and only when that can change something.

**Ownership.** A child is this owner's when its controller owner reference carries
the owner's uid. Names are not enough: a ModelDeployment named like an existing,
unrelated Deployment or Service, or an owner deleted and created again under the
same name, must never take over or delete what is not its own. So a child that
exists is changed only after it was read and found controlled by the owner, a child
that does not exist is created (never applied blindly, which would take over one
created meanwhile), and a delete carries the child's uid as a precondition. A name
held by another object is a conflict: `apply` reports it and leaves the object alone.

**Cost.** A ModelDeployment ticks every two seconds; applying its Service and
Deployments (and deleting a shadow Service that is not there) on every tick cost 200
deployments about 100 API writes a second while nothing changed. The operator
remembers, per child, what it last applied (a digest of the manifest) or that it
deleted it (`OperatorContext.applied`); the same request within `RESYNC_SECONDS` is
skipped. The memory is a hint: after a restart, or once a minute, the child is read
and applied again, so a child edited or deleted by hand is put back within a minute.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from mlops_operator.handlers.context import RESYNC_SECONDS, OperatorContext
from mlops_operator.k8s import Conflict, NotFound
from mlops_operator.resources.common import controller_uid

__all__ = ["RESYNC_SECONDS", "apply", "delete"]

_ABSENT = "absent"


def _key(api_version: str, kind: str, name: str, namespace: str | None) -> str:
    return f"{api_version}/{kind}/{namespace or ''}/{name}"


def _conflict(manifest: Mapping[str, Any], found: Mapping[str, Any]) -> str:
    meta = manifest["metadata"]
    holder = controller_uid(found)
    whose = f"is controlled by another object (uid {holder})" if holder else "has no controller"
    return (
        f"{manifest['kind']} {meta['name']} already exists and {whose}; the operator leaves it"
        " alone: delete or rename it, or rename this object"
    )


async def apply(
    context: OperatorContext,
    manifest: Mapping[str, Any],
    *,
    exists: bool,
    controller: str | None = None,
) -> str | None:
    """Create `manifest`, or server-side apply it over the child its owner controls.

    The owner is the controller owner reference in `manifest`. Returns None when done
    (or skipped: applied unchanged within the resync period), else why the child was left
    alone (a name conflict). `exists`: whether the caller saw the child in its cache (a child
    it did not see is always written: someone may have deleted it); `controller`: the uid
    the caller's cache shows as the child's controller, which spares reading it first.
    """
    meta = manifest["metadata"]
    owner = controller_uid(manifest)
    if owner is None:
        raise ValueError(f"{manifest['kind']} {meta['name']} names no controller owner reference")
    key = _key(manifest["apiVersion"], manifest["kind"], meta["name"], meta.get("namespace"))
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
    if exists and context.applied.get(key) == digest:
        return None
    if controller != owner:
        try:
            found = await context.kube.get(
                manifest["apiVersion"], manifest["kind"], meta["name"], meta.get("namespace")
            )
        except NotFound:
            try:
                await context.kube.create(manifest)
            except Conflict:
                return None  # created meanwhile, by whom is read at the next call
            context.applied.put(key, digest)
            return None
        if controller_uid(found) != owner:
            return _conflict(manifest, found)
    await context.kube.apply(manifest)
    context.applied.put(key, digest)
    return None


async def delete(
    context: OperatorContext,
    api_version: str,
    kind: str,
    name: str,
    namespace: str | None,
    *,
    owner: str,
) -> None:
    """Delete the child if the object of uid `owner` controls it, unless it was found gone (or
    deleted) within the resync period. An object of that name it does not control stays."""
    key = _key(api_version, kind, name, namespace)
    if context.applied.get(key) == _ABSENT:
        return
    try:
        found = await context.kube.get(api_version, kind, name, namespace)
    except NotFound:
        context.applied.put(key, _ABSENT)
        return
    if controller_uid(found) == owner:
        # The uid precondition: if it was replaced since it was read, the new one stays.
        with contextlib.suppress(Conflict):
            await context.kube.delete(
                api_version, kind, name, namespace, uid=found["metadata"]["uid"]
            )
    # Gone now, or someone else's object of that name: nothing of ours is there either way.
    context.applied.put(key, _ABSENT)
