"""The controller kit: how every kind's handler writes status, posts an Event and tells the time.

A handler says what to gather, what to decide and what to apply; the status its
decision implies is built by a pure function of the kind (`decisions`, `resources`,
`drift.status`) and written here, one way for all four kinds. Five fixes to status
writing once landed in one kind only; this module is why the next lands in all.

**Status** is written by `write_status` as a merge patch of the ``status``
subresource, conditional on the resourceVersion of the object it was decided
from (optimistic concurrency: the API server refuses the write with a Conflict
when the object changed since). What happens then depends on what was decided:

- *A status decided from a copy* (a value: a Kopf body, a timer's tick) is
  **dropped**: it may rest on an old status (Kopf's copy lags the previous tick's
  own write), and writing it would overwrite the newer decision or record one
  twice. Nothing is written, the caller is told (None) and stops before acting
  on it; the next tick or event decides again from the object as it is then.
- *A status that is a function of the stored object* (a callable: a trainer Job's
  state over whatever the TrainingJob holds) is **retried**: the object is read
  again and the status derived again from it, a few times, then
  `kopf.TemporaryError` (Kopf retries the handler later).

A status that is already stored costs no call. Nothing is written to an object
being deleted or to a namesake (another uid). A pydantic status is the whole
status (fields it leaves out are cleared: an approval withdrawn must not linger
in the merge); a mapping names only the fields to set (None clears one).

`stage_status` is the one other way: the fields ride on Kopf's own patch of the
object, which Kopf writes after the handler returns, together with its
bookkeeping annotations (`handlers.bookkeeping`). Only a refused spec is
reported that way (`reconciling.parse`), from the handler Kopf runs for that
spec: what it writes follows from the spec alone, so it is not conditional.

**Events** are posted by `post`, typed (`api.events`); **time** is `now`.

``tests/unit/operator/test_kit.py`` walks every module of the package and fails
on a status write anywhere but here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import kopf
from pydantic import BaseModel, ValidationError

from mlops_operator.api.events import MAX_EVENT_MESSAGE, Event
from mlops_operator.k8s import Conflict, KubeClient, NotFound

__all__ = [
    "REDECIDE_ATTEMPTS",
    "Status",
    "StatusOf",
    "Written",
    "now",
    "post",
    "stage_status",
    "status_patch",
    "stored_status",
    "write_status",
]

logger = logging.getLogger(__name__)

REDECIDE_ATTEMPTS = 5
"""How many times a status derived from the stored object is read, derived and written."""

Status = Mapping[str, Any] | BaseModel
"""A whole status (a pydantic model) or the fields to set (a mapping; None clears a field)."""
StatusOf = Callable[[Mapping[str, Any]], Status | None]
"""The status to write over an object as stored (None: nothing to write)."""
S = TypeVar("S", bound=BaseModel)


def now() -> datetime:
    """The time in whole seconds, as Kubernetes writes metav1.Time."""
    return datetime.now(UTC).replace(microsecond=0)


def post(obj: Mapping[str, Any], event: Event) -> None:
    """Post `event` about `obj` (a Kopf body, or the object as the client read it).

    Kopf queues it and posts it in the background; the message is cut to
    `MAX_EVENT_MESSAGE` characters.
    """
    body = obj if isinstance(obj, kopf.Body) else kopf.Body(cast(kopf.RawBody, dict(obj)))
    message = event.message[:MAX_EVENT_MESSAGE]
    kopf.event(body, type=event.type.value, reason=event.reason.value, message=message)


@dataclass(frozen=True)
class Written:
    """A status write: the object it was decided over, and the object as stored after it."""

    before: Mapping[str, Any]
    after: Mapping[str, Any]

    @property
    def changed(self) -> bool:
        """Whether this write changed the status (False: it was stored already)."""
        return self.after is not self.before


def stored_status(body: Mapping[str, Any], model: type[S]) -> S:
    """The status `body` holds as `model`; one that does not parse starts over (it is rewritten)."""
    try:
        return model.model_validate(dict(body.get("status") or {}))
    except ValidationError:
        return model()


def status_patch(before: Mapping[str, Any], status: Status) -> dict[str, Any]:
    """The merge patch turning the status `before` into `status` (empty when they agree).

    A model is the whole status: fields `before` has and it leaves out become null.
    A mapping names the fields to set: those equal in `before` are left out.
    """
    if isinstance(status, BaseModel):
        wanted = status.model_dump(mode="json", by_alias=True, exclude_none=True)
        cleared = {key: None for key in before if key not in wanted}
    else:
        wanted, cleared = dict(status), {}
    return {key: value for key, value in wanted.items() if before.get(key) != value} | cleared


async def write_status(
    kube: KubeClient,
    decided_from: Mapping[str, Any],
    status: Status | StatusOf,
    *,
    cached: bool = False,
) -> Written | None:
    """Write `status`, conditional on the resourceVersion of `decided_from` (see the module doc).

    `status` as a value is dropped on a Conflict; as a function of the stored object
    it is derived again from a fresh read and retried. With `cached` (a function
    only), `decided_from` is a watch's copy that may lag the API server, so a status
    it shows as written already is confirmed by a fresh read. None: nothing was
    written (dropped, nothing to write, the object gone, deleting, or a namesake).
    """
    redecide = callable(status)
    if cached and not redecide:
        raise ValueError("a cached copy needs a status derived from the stored object")
    api_version, kind = str(decided_from["apiVersion"]), str(decided_from["kind"])
    meta = decided_from["metadata"]
    name, namespace, uid = str(meta["name"]), meta.get("namespace"), meta.get("uid")
    current: Mapping[str, Any] | None = decided_from
    for _ in range(REDECIDE_ATTEMPTS if redecide else 1):
        if current is None:
            try:
                current = await kube.get(api_version, kind, name, namespace)
            except NotFound:
                return None
        metadata = current.get("metadata") or {}
        if metadata.get("uid") != uid or metadata.get("deletionTimestamp"):
            return None
        wanted = cast(StatusOf, status)(current) if redecide else cast(Status, status)
        if wanted is None:
            return None
        patch = status_patch(current.get("status") or {}, wanted)
        if not patch:
            if cached:
                current, cached = None, False
                continue
            return Written(current, current)
        conditional = {"metadata": {"resourceVersion": metadata["resourceVersion"]}}
        try:
            stored = await kube.patch(
                api_version, kind, name, namespace, conditional | {"status": patch},
                subresource="status",
            )  # fmt: skip
        except Conflict:
            if not redecide:
                logger.info("%s %s/%s changed since it was read; the decision is dropped",
                            kind, namespace, name)  # fmt: skip
                return None
            current = None
            continue
        except NotFound:
            return None  # deleted since it was read
        return Written(current, stored)
    raise kopf.TemporaryError(f"the status of {kind} {namespace}/{name} kept changing", delay=2)


def stage_status(body: kopf.Body, patch: kopf.Patch, status: Mapping[str, Any]) -> bool:
    """Put the fields of `status` that differ from `body`'s into Kopf's `patch`; whether any did.

    Kopf writes them once the handler returns, with its own annotations (see the
    module docstring for the one use).
    """
    changed = status_patch(body.get("status") or {}, status)
    patch.status.update(changed)
    return bool(changed)
