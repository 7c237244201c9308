"""What every kind's handler shares: registration, parsing the body, reporting the spec's fate.

A handler is registered for the three moments its object may need work: created,
its spec changed, or found again when the operator (re)starts. It runs in one of
the operator's reconcile slots (`limited`): Kopf starts a worker per object at
once, so a burst of 1,000 creations would otherwise run 1,000 reconciles side by
side, each slower, all holding memory and API connections, the first finishing
no sooner than the last. It first parses
the body into the kind's pydantic model. A spec the API server accepted but the
model refuses (a rule the CRD cannot express, or a CRD older than the operator)
can never reconcile until someone edits it: the handler records that in status
(the kind's top condition False with reason ``InvalidSpec`` and the validation
errors), posts one Warning Event, and raises `kopf.PermanentError` so Kopf stops
retrying until the next spec change.

Handlers return None: Kopf would store a return value under ``status.<handler>``,
which the typed status schema prunes.

Event handlers are the exception to Kopf's retries: it calls them once per event
and drops what they raise, and a watch resumes where it stopped rather than
listing again, so a dropped event is gone until the object changes or the
operator restarts. `retrying` runs them until the work is done or its failure is
not transient, as controller-runtime requeues a failed reconcile.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import aiohttp
import kopf
from pydantic import ValidationError

from mlops_operator.api.conditions import (
    Condition,
    ConditionStatus,
    ConditionType,
    Reason,
    set_condition,
)
from mlops_operator.api.events import Event
from mlops_operator.api.resource import GROUP, VERSION, CustomResource
from mlops_operator.handlers.context import OperatorContext
from mlops_operator.handlers.kit import now, post, stage_status
from mlops_operator.k8s import ApiError
from mlops_operator.runtime.metrics import reconciler

__all__ = [
    "MAX_MESSAGE",
    "acceptance_status",
    "current_conditions",
    "limited",
    "parse",
    "reconciles",
    "retrying",
    "validation_message",
]

R = TypeVar("R", bound=CustomResource)
Handler = Callable[..., Awaitable[None]]

logger = logging.getLogger(__name__)

_MAX_BACKOFF = 30.0

MAX_MESSAGE = 2048
"""Validation messages are cut here: a condition is read in `kubectl describe`, not a log."""


def limited(handler: Handler) -> Callable[..., Coroutine[Any, Any, None]]:
    """Run the decorated handler in one of the reconcile slots of its ``memo``, first come first served."""

    @functools.wraps(handler)
    async def run(*args: Any, memo: OperatorContext, **kwargs: Any) -> None:
        async with memo.slots:
            await handler(*args, memo=memo, **kwargs)

    return run


def _transient(error: Exception) -> bool:
    if isinstance(error, ApiError):
        return error.retryable
    return isinstance(error, aiohttp.ClientError | TimeoutError | kopf.TemporaryError)


def _hint(error: Exception) -> float | None:
    """The wait the failure itself asks for: the API server's Retry-After, a TemporaryError's delay."""
    if isinstance(error, ApiError):
        return error.retry_after
    if isinstance(error, kopf.TemporaryError):
        return error.delay
    return None


async def retrying(
    memo: OperatorContext,
    work: Callable[[], Awaitable[None]],
    *,
    within: float | None = None,
    first_backoff: float = 1.0,
) -> None:
    """Run `work` in a reconcile slot until it succeeds, retrying transient failures.

    Transient: an API refusal that waiting may cure (`ApiError.retryable`), a lost
    connection or a timeout, a `kopf.TemporaryError`. They are retried after the wait
    the failure asks for, else with exponential back-off from `first_backoff`, at most
    30 s, for ever or, with `within`, while the next attempt would start within that
    many seconds of the call; then, or on any other error, the error is raised. The
    back-off is spent outside the slot: an outage must not hold them all.
    """
    deadline = math.inf if within is None else time.monotonic() + within
    backoff = first_backoff
    while True:
        try:
            async with memo.slots:
                await work()
            return
        except Exception as error:
            if not _transient(error):
                raise
            wait = min(_hint(error) or backoff, _MAX_BACKOFF)
            if time.monotonic() + wait > deadline:
                raise
            logger.info("retrying in %.0f s after a transient failure: %s", wait, error)
        await asyncio.sleep(wait)
        backoff = min(backoff * 2, _MAX_BACKOFF)


def reconciles(
    kind: type[CustomResource],
) -> Callable[[Handler], Callable[..., Coroutine[Any, Any, None]]]:
    """Register the decorated coroutine as `kind`'s reconciler, measured under its lowercase kind.

    The measurement starts once a slot is free: the reconcile time excludes the wait.
    """

    def register(handler: Handler) -> Callable[..., Coroutine[Any, Any, None]]:
        reconcile = limited(reconciler(kind.crd.singular)(handler))
        plural = kind.crd.plural
        kopf.on.resume(GROUP, VERSION, plural)(reconcile)
        kopf.on.create(GROUP, VERSION, plural)(reconcile)
        kopf.on.update(GROUP, VERSION, plural, field="spec")(reconcile)
        return reconcile

    return register


def validation_message(error: ValidationError) -> str:
    """Pydantic's errors as one line a user can act on: ``spec.fieldName: what is wrong; …``."""
    parts = [
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" if e["loc"] else e["msg"]
        for e in error.errors(include_url=False)
    ]
    message = "; ".join(parts)
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"


def current_conditions(body: Mapping[str, Any]) -> list[Condition]:
    """The conditions in the body's status; entries that do not parse are dropped (they are rewritten)."""
    status = body.get("status") or {}
    found = []
    for raw in status.get("conditions") or []:
        try:
            found.append(Condition.model_validate(raw))
        except ValidationError:
            continue
    return found


def acceptance_status(
    conditions: Sequence[Condition],
    *,
    condition_type: ConditionType,
    generation: int | None,
    error: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The status fields that say whether the spec of `generation` was accepted.

    Accepted: the top condition is Unknown (nothing acts on the spec yet), reason
    `Reason.RECONCILED`. Refused: False with reason `Reason.INVALID_SPEC` and `error`.
    """
    if error is None:
        status, reason = ConditionStatus.UNKNOWN, Reason.RECONCILED
        message = "The spec is valid; no controller acts on this kind yet."
    else:
        status, reason, message = ConditionStatus.FALSE, Reason.INVALID_SPEC, error
    updated = set_condition(
        conditions,
        type_=condition_type,
        status=status,
        reason=reason,
        message=message,
        observed_generation=generation,
        now=now,
    )
    return {
        "observedGeneration": generation,
        "conditions": [
            c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in updated
        ],
    }


def parse(kind: type[R], body: kopf.Body, patch: kopf.Patch, condition_type: ConditionType) -> R:
    """`body` as `kind`'s model; a refused spec is reported (status, one Event) and made permanent."""
    try:
        # The status is the operator's to write; a stale or foreign one must not block the spec.
        return kind.model_validate({key: value for key, value in body.items() if key != "status"})
    except ValidationError as exc:
        error = validation_message(exc)
    status = acceptance_status(
        current_conditions(body),
        condition_type=condition_type,
        generation=body.metadata.get("generation"),
        error=error,
        now=now(),
    )
    if stage_status(body, patch, status):
        post(body, Event.warning(Reason.INVALID_SPEC, error))
    raise kopf.PermanentError(f"invalid spec: {error}")
