"""What every handler shares, without a cluster: parsing, messages, the acceptance status.

Aspects: a valid body parses into its model whatever its status holds; a refused
spec becomes one actionable line; an already-recorded refusal raises
PermanentError and changes nothing (so no second Event); accepted and refused
specs give the documented condition; lastTransitionTime holds until the status
flips; malformed conditions in a body are dropped; an event handler's work is
retried through transient failures only, and waits for its retry outside the
reconcile slots.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import kopf
import pytest
import yaml
from pydantic import ValidationError

from mlops_operator.api.conditions import Condition, ConditionStatus, ConditionType
from mlops_operator.api.trainingjob import TrainingJob
from mlops_operator.handlers.context import OperatorContext
from mlops_operator.handlers.reconciling import (
    MAX_MESSAGE,
    acceptance_status,
    current_conditions,
    parse,
    retrying,
    validation_message,
)
from mlops_operator.k8s import ApiError, KubeClient
from mlops_operator.runtime.settings import OperatorSettings

EXAMPLE = Path(__file__).resolve().parents[3] / "manifests" / "examples" / "trainingjob.yaml"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 2, tzinfo=UTC)


def _body(**spec_changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"] |= {"generation": 3, "uid": "u-1"}
    doc["spec"] |= spec_changes
    return doc


def _refusal(body: dict[str, Any]) -> str:
    try:
        TrainingJob.model_validate({k: v for k, v in body.items() if k != "status"})
    except ValidationError as exc:
        return validation_message(exc)
    raise AssertionError("the body was expected to be refused")


def test_a_valid_body_parses_whatever_its_status_holds() -> None:
    body = _body()
    body["status"] = {"phase": "NoSuchPhase", "junk": True}
    patch = kopf.Patch()
    job = parse(TrainingJob, kopf.Body(body), patch, ConditionType.SUCCEEDED)
    assert job.name == body["metadata"]["name"]
    assert job.generation == 3
    assert not patch


def test_a_refused_spec_is_one_line_naming_each_field() -> None:
    message = _refusal(_body(seed="seven", unknownField=1))
    assert "spec.seed: Input should be a valid integer" in message
    assert "spec.unknownField: Extra inputs are not permitted" in message
    assert "\n" not in message


def test_long_messages_are_cut() -> None:
    message = _refusal(_body(features=list(range(300))))
    assert len(message) == MAX_MESSAGE
    assert message.endswith("…")


def test_a_refusal_already_recorded_changes_nothing_and_stays_permanent() -> None:
    body = _body(seed="seven")
    error = _refusal(body)
    body["status"] = acceptance_status(
        [], condition_type=ConditionType.SUCCEEDED, generation=3, error=error, now=T0
    )
    patch = kopf.Patch()
    with pytest.raises(kopf.PermanentError, match=r"invalid spec: spec\.seed"):
        parse(TrainingJob, kopf.Body(copy.deepcopy(body)), patch, ConditionType.SUCCEEDED)
    assert not patch


@pytest.mark.parametrize(
    ("error", "status", "reason"),
    [(None, "Unknown", "Reconciled"), ("spec.seed: bad", "False", "InvalidSpec")],
    ids=["accepted", "refused"],
)
def test_acceptance_sets_observed_generation_and_the_top_condition(
    error: str | None, status: str, reason: str
) -> None:
    result = acceptance_status(
        [], condition_type=ConditionType.READY, generation=7, error=error, now=T0
    )
    assert result["observedGeneration"] == 7
    [condition] = result["conditions"]
    assert condition == {
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": error or "The spec is valid; no controller acts on this kind yet.",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
        "observedGeneration": 7,
    }


def test_the_transition_time_holds_until_the_status_flips() -> None:
    first = acceptance_status(
        [], condition_type=ConditionType.READY, generation=1, error=None, now=T0
    )
    conditions = [Condition.model_validate(c) for c in first["conditions"]]
    same = acceptance_status(
        conditions, condition_type=ConditionType.READY, generation=2, error=None, now=T1
    )
    flipped = acceptance_status(
        conditions, condition_type=ConditionType.READY, generation=2, error="bad", now=T1
    )
    assert same["conditions"][0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert flipped["conditions"][0]["lastTransitionTime"] == "2026-01-02T00:00:00Z"


def test_other_conditions_are_kept_and_malformed_ones_dropped() -> None:
    other = {
        "type": "Suspended",
        "status": "False",
        "reason": "Suspended",
        "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    body = {"status": {"conditions": [other, {"type": "Ready"}, "junk"]}}
    conditions = current_conditions(body)
    assert [c.type for c in conditions] == ["Suspended"]
    result = acceptance_status(
        conditions, condition_type=ConditionType.READY, generation=1, error=None, now=T0
    )
    assert [c["type"] for c in result["conditions"]] == ["Suspended", "Ready"]
    assert result["conditions"][0]["status"] == ConditionStatus.FALSE


def _memo(slots: int = 16) -> OperatorContext:
    return OperatorContext.create(OperatorSettings(max_concurrent_reconciles=slots), KubeClient())


async def test_transient_failures_are_retried_until_the_work_is_done() -> None:
    failures: list[Exception] = [
        aiohttp.ClientConnectionError("connection refused"),
        ApiError(503, "ServiceUnavailable", "storage is (re)initializing"),
        TimeoutError(),
        kopf.TemporaryError("not yet", delay=0.001),
    ]
    calls = 0

    async def work() -> None:
        nonlocal calls
        calls += 1
        if failures:
            raise failures.pop(0)

    await retrying(_memo(), work, first_backoff=0.001)
    assert calls == 5


async def test_a_lasting_or_permanent_failure_is_raised() -> None:
    calls = 0

    async def forbidden() -> None:
        nonlocal calls
        calls += 1
        raise ApiError(403, "Forbidden", "no")

    with pytest.raises(ApiError, match="403"):
        await retrying(_memo(), forbidden, first_backoff=0.001)
    assert calls == 1

    async def down() -> None:
        nonlocal calls
        calls += 1
        raise aiohttp.ClientConnectionError("connection refused")

    calls = 0
    with pytest.raises(aiohttp.ClientConnectionError):
        await retrying(_memo(), down, within=0.05, first_backoff=0.001)
    assert 2 <= calls < 10

    async def throttled() -> None:
        nonlocal calls
        calls += 1
        raise ApiError(429, "TooManyRequests", "slow down", retry_after=20)

    # The server's Retry-After, not the short back-off, decides the wait: past `within`.
    calls = 0
    with pytest.raises(ApiError, match="429"):
        await retrying(_memo(), throttled, within=5, first_backoff=0.001)
    assert calls == 1


async def test_the_retry_waits_outside_the_reconcile_slot() -> None:
    memo = _memo(slots=1)
    order: list[str] = []
    others: list[asyncio.Task[None]] = []

    async def other() -> None:
        async with memo.slots:
            order.append("other")

    async def work() -> None:
        order.append("work")
        if not others:
            others.append(asyncio.create_task(other()))
            raise aiohttp.ClientConnectionError("connection refused")

    await retrying(memo, work, first_backoff=0.2)
    await asyncio.gather(*others)
    assert order == ["work", "other", "work"]
