"""The conditions helper: transition semantics and documented reasons.

Aspects: a new condition is appended with ``now``; a repeated status keeps its
lastTransitionTime while reason, message and generation update; a flip moves
the time; other conditions keep their order; the input is not modified; the
lookups; every Reason and ConditionType member has a docstring line.
"""

from __future__ import annotations

import ast
import inspect
from datetime import UTC, datetime, timedelta

import pytest

from mlops_operator.api import conditions
from mlops_operator.api.conditions import (
    Condition,
    ConditionStatus,
    ConditionType,
    Reason,
    find_condition,
    is_condition_true,
    set_condition,
)

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def _set(
    existing: list[Condition],
    status: ConditionStatus,
    reason: Reason,
    now: datetime,
    type_: str = ConditionType.READY,
    generation: int = 1,
) -> list[Condition]:
    return set_condition(
        existing,
        type_=type_,
        status=status,
        reason=reason,
        message=f"{reason} at {now:%H:%M}",
        observed_generation=generation,
        now=now,
    )


def test_new_condition_is_appended_with_now() -> None:
    result = _set([], ConditionStatus.FALSE, Reason.NO_VERSION, T0)
    assert result == [
        Condition(
            type="Ready",
            status=ConditionStatus.FALSE,
            reason="NoVersion",
            message="NoVersion at 12:00",
            last_transition_time=T0,
            observed_generation=1,
        )
    ]


def test_same_status_keeps_the_transition_time_but_updates_the_rest() -> None:
    first = _set([], ConditionStatus.TRUE, Reason.AVAILABLE, T0)
    second = _set(first, ConditionStatus.TRUE, Reason.PROMOTED, T1, generation=2)
    (ready,) = second
    assert ready.last_transition_time == T0
    assert (ready.reason, ready.message, ready.observed_generation) == (
        "Promoted",
        "Promoted at 12:05",
        2,
    )


def test_status_flip_moves_the_transition_time() -> None:
    first = _set([], ConditionStatus.TRUE, Reason.AVAILABLE, T0)
    (ready,) = _set(first, ConditionStatus.FALSE, Reason.REPLICAS_UNAVAILABLE, T1)
    assert ready.last_transition_time == T1
    assert ready.status is ConditionStatus.FALSE


def test_other_conditions_keep_their_order_and_the_input_is_untouched() -> None:
    start = _set([], ConditionStatus.TRUE, Reason.AVAILABLE, T0)
    start = _set(start, ConditionStatus.FALSE, Reason.RECONCILED, T0, ConditionType.PROGRESSING)
    snapshot = [c.model_copy() for c in start]
    result = _set(start, ConditionStatus.FALSE, Reason.FLOOR_BREACHED, T1)
    assert [c.type for c in result] == ["Ready", "Progressing"]
    assert result[1] is start[1]
    assert start == snapshot


def test_lookups() -> None:
    current = _set([], ConditionStatus.TRUE, Reason.VALIDATED, T0, ConditionType.VALIDATED)
    current = _set(current, ConditionStatus.UNKNOWN, Reason.VALIDATING, T0)
    assert find_condition(current, "Validated") is current[0]
    assert find_condition(current, "Degraded") is None
    assert is_condition_true(current, ConditionType.VALIDATED)
    assert not is_condition_true(current, ConditionType.READY)
    assert not is_condition_true(current, ConditionType.DEGRADED)


def test_condition_wire_format() -> None:
    (ready,) = _set([], ConditionStatus.TRUE, Reason.AVAILABLE, T0)
    assert ready.model_dump(mode="json", by_alias=True) == {
        "type": "Ready",
        "status": "True",
        "reason": "Available",
        "message": "Available at 12:00",
        "lastTransitionTime": "2026-11-26T12:00:00Z",
        "observedGeneration": 1,
    }


@pytest.mark.parametrize("enum", [Reason, ConditionType])
def test_every_member_has_a_docstring_line(enum: type) -> None:
    tree = ast.parse(inspect.getsource(conditions))
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == enum.__name__]
    documented = set()
    for current, following in zip(cls.body, cls.body[1:], strict=False):
        if (
            isinstance(current, ast.Assign)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
            and following.value.value.strip()
        ):
            documented.add(current.targets[0].id)  # type: ignore[attr-defined]
    assert documented == {m.name for m in enum}  # type: ignore[attr-defined]


def test_reasons_are_camel_case_words() -> None:
    for reason in Reason:
        assert reason.value[0].isupper()
        assert reason.value.isalnum()
