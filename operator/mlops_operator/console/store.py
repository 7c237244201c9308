"""What the console shows, kept current by watches: the four kinds in the namespaces it may read.

One list-then-watch loop per kind and scope (every namespace at once, or one
namespace each) keeps an in-memory copy, the way client-go's informers do: a page
is rendered from memory in milliseconds whatever the number of objects, the API
server sees one watch per kind and scope instead of a list per page view, and a
change reaches the open pages within the seconds their polling takes.

The scope is decided once, at start, by what the identity may do (`discover`):
given namespaces; else every namespace when it may list ModelVersions cluster-wide;
else the namespaces it may list them in, when it may list namespaces (one
SelfSubjectAccessReview each); else its kubeconfig's namespace. RBAC stays the
judge: a namespace the identity may not read shows as refused, with the API
server's message, never as empty.

`Store.revision` increases with every change, so a page that shows revision N
knows it is current while N is still the revision: a poll costs a comparison.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from mlops_operator.api.resource import API_VERSION, GROUP
from mlops_operator.k8s import ApiError, KubeClient

__all__ = ["KINDS", "Scope", "Snapshot", "Store", "discover"]

log = logging.getLogger(__name__)

KINDS = ("TrainingJob", "ModelVersion", "ModelDeployment", "DriftPolicy")
"""The kinds the console reads, each through its own watch."""

_MAX_BACKOFF = 30.0
# Fields no page shows and that make up much of an object's size.
_DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)

Key = tuple[str, str]
"""(namespace, name)."""


@dataclass(frozen=True)
class Scope:
    """Where the console reads: every namespace (None), or these namespaces."""

    namespaces: tuple[str, ...] | None
    how: str
    """How the scope was decided, shown on every page (e.g. "--namespace", "RBAC")."""

    def covers(self, namespace: str) -> bool:
        """Whether `namespace` is read at all."""
        return self.namespaces is None or namespace in self.namespaces


@dataclass(frozen=True)
class Snapshot:
    """The objects at one revision; pages render from this, never from the live dicts."""

    revision: int
    objects: Mapping[str, Mapping[Key, Mapping[str, Any]]]
    refused: Mapping[tuple[str, str], str]
    """(kind, namespace or "*") -> the API server's refusal, for scopes the identity may not read."""
    synced: bool
    """Whether every watch has listed its objects at least once."""
    scope: Scope

    def of(self, kind: str, namespace: str | None = None) -> list[Mapping[str, Any]]:
        """The objects of `kind` (in `namespace`), ordered by namespace and name."""
        found = self.objects.get(kind, {})
        keys = sorted(k for k in found if namespace is None or k[0] == namespace)
        return [found[k] for k in keys]

    def get(self, kind: str, namespace: str, name: str) -> Mapping[str, Any] | None:
        """One object, or None."""
        return self.objects.get(kind, {}).get((namespace, name))

    def namespaces(self) -> list[str]:
        """Namespaces that hold any object, plus the scope's own."""
        seen = {key[0] for objects in self.objects.values() for key in objects}
        seen.update(self.scope.namespaces or ())
        return sorted(seen)

    def refusal(self, kind: str, namespace: str) -> str | None:
        """Why `kind` in `namespace` cannot be shown, when the API server refused it."""
        return self.refused.get((kind, namespace)) or self.refused.get((kind, "*"))


def _trimmed(obj: Mapping[str, Any]) -> dict[str, Any]:
    metadata = dict(obj.get("metadata") or {})
    metadata.pop("managedFields", None)
    annotations = metadata.get("annotations")
    if annotations:
        metadata["annotations"] = {
            k: v for k, v in annotations.items() if k not in _DROPPED_ANNOTATIONS
        }
    return {**obj, "metadata": metadata}


def _key(obj: Mapping[str, Any]) -> Key:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace", "")), str(metadata.get("name", ""))


@dataclass
class Store:
    """The objects the watches keep current, and what the API server refused."""

    scope: Scope
    _objects: dict[str, dict[Key, dict[str, Any]]] = field(default_factory=dict)
    _refused: dict[tuple[str, str], str] = field(default_factory=dict)
    _pending: set[tuple[str, str]] = field(default_factory=set)
    _revision: int = 0
    _snapshot: Snapshot | None = None

    def __post_init__(self) -> None:
        self._pending = {(kind, ns) for kind in KINDS for ns in self.watched_namespaces()}

    def watched_namespaces(self) -> tuple[str, ...]:
        """The namespace of each watch: ``""`` for one watch over every namespace."""
        return ("",) if self.scope.namespaces is None else self.scope.namespaces

    @property
    def revision(self) -> int:
        """Increases with every change."""
        return self._revision

    def snapshot(self) -> Snapshot:
        """The current objects, frozen (cached until the next change)."""
        if self._snapshot is None or self._snapshot.revision != self._revision:
            self._snapshot = Snapshot(
                revision=self._revision,
                objects={kind: dict(found) for kind, found in self._objects.items()},
                refused=dict(self._refused),
                synced=not self._pending,
                scope=self.scope,
            )
        return self._snapshot

    def _bump(self) -> None:
        self._revision += 1

    def replace(self, kind: str, namespace: str, items: Iterable[Mapping[str, Any]]) -> None:
        """Everything of `kind` in `namespace` ("" for all) is `items`, as a list returned it."""
        found = self._objects.setdefault(kind, {})
        for key in [k for k in found if not namespace or k[0] == namespace]:
            del found[key]
        for item in items:
            found[_key(item)] = _trimmed(item)
        self._refused.pop((kind, namespace or "*"), None)
        self._pending.discard((kind, namespace))
        self._bump()

    def apply(self, kind: str, event_type: str, obj: Mapping[str, Any]) -> None:
        """One watch event."""
        found = self._objects.setdefault(kind, {})
        if event_type == "DELETED":
            found.pop(_key(obj), None)
        else:
            found[_key(obj)] = _trimmed(obj)
        self._bump()

    def refuse(self, kind: str, namespace: str, message: str) -> None:
        """The API server will not let the identity read `kind` in `namespace` ("" for all)."""
        self._refused[(kind, namespace or "*")] = message
        self._pending.discard((kind, namespace))
        self._bump()


async def _reflect(kube: KubeClient, store: Store, kind: str, namespace: str) -> None:
    """List, then watch, `kind` in `namespace` into `store` until cancelled."""
    backoff = 1.0
    while True:
        try:
            items, version = await kube.snapshot(API_VERSION, kind, namespace or None)
            store.replace(kind, namespace, items)
            backoff = 1.0
            while version:
                version = await _follow(kube, store, kind, namespace, version)
        except ApiError as error:
            if error.status in (401, 403):
                store.refuse(kind, namespace, error.message)
                log.warning("%s in %s: %s", kind, namespace or "every namespace", error.message)
                await asyncio.sleep(_MAX_BACKOFF)  # RBAC may change: look again later
                continue
            log.info("%s watch: %s; listing again in %.0f s", kind, error, backoff)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            log.info("%s watch: %r; listing again in %.0f s", kind, error, backoff)
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, _MAX_BACKOFF)


async def _follow(kube: KubeClient, store: Store, kind: str, namespace: str, version: str) -> str:
    """One watch from `version`; the version to continue from, or "" to list again."""
    async for event in kube.watch(API_VERSION, kind, namespace or None, resource_version=version):
        kind_of_event = event.get("type", "")
        obj = event.get("object") or {}
        if kind_of_event == "ERROR":
            return ""  # 410 Gone (or another Status): the version is too old, list again
        version = str((obj.get("metadata") or {}).get("resourceVersion", version))
        if kind_of_event != "BOOKMARK":
            store.apply(kind, kind_of_event, obj)
    return version


async def run_watches(kube: KubeClient, store: Store) -> None:
    """Keep `store` current until cancelled: one reflector per kind and watched namespace."""
    tasks = [
        asyncio.create_task(_reflect(kube, store, kind, namespace), name=f"watch {kind}")
        for kind in KINDS
        for namespace in store.watched_namespaces()
    ]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _may(kube: KubeClient, verb: str, namespace: str | None) -> bool:
    attributes = {"group": GROUP, "resource": "modelversions", "verb": verb}
    if namespace:
        attributes["namespace"] = namespace
    review = await kube.review(
        "authorization.k8s.io/v1", "SelfSubjectAccessReview", {"resourceAttributes": attributes}
    )
    return bool((review.get("status") or {}).get("allowed"))


async def discover(
    kube: KubeClient, requested: Iterable[str], default_namespace: str | None
) -> Scope:
    """Where to read (module docstring): the namespaces asked for, else what RBAC allows."""
    asked = tuple(dict.fromkeys(requested))
    if asked:
        return Scope(asked, "--namespace")
    if await _may(kube, "watch", None) and await _may(kube, "list", None):
        return Scope(None, "RBAC: every namespace")
    try:
        namespaces = [n["metadata"]["name"] for n in await kube.list("v1", "Namespace")]
    except ApiError:
        namespaces = []
    started = time.monotonic()
    allowed = [ns for ns in namespaces if await _may(kube, "list", ns)]
    log.info(
        "%d readable namespaces of %d in %.1f s",
        len(allowed),
        len(namespaces),
        time.monotonic() - started,
    )
    if allowed:
        return Scope(tuple(allowed), "RBAC: the namespaces you may list")
    return Scope((default_namespace or "default",), "your kubeconfig's namespace")
