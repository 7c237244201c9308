"""The schedule syntax: what the API server admits and what the controller parses agree.

Aspects: the pydantic model and the CRD's CEL rule use one pattern, generated from the
fields of `api/schedules.py`; every expression the pattern admits parses, or fails
only on what a pattern cannot see (a reversed range); every expression the parser
reads is admitted; a refusal names the ranges; the status of a policy whose schedule
cannot fire says so in `Ready`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from mlops_operator.api.driftpolicy import DriftPolicy, Triggers
from mlops_operator.api.schedules import FIELDS, SCHEDULE_PATTERN
from mlops_operator.decisions.drift import Evaluation, evaluate
from mlops_operator.drift.schedule import CronSchedule
from mlops_operator.drift.status import evaluated_status

_TOKENS = st.sampled_from(
    ["*", "0", "5", "7", "12", "23", "24", "31", "32", "59", "60", "61", "MON", "jan", "FUN",
     "-", ",", "/", "/0", "/5", "*/2"]
)  # fmt: skip
_FIELD = st.lists(_TOKENS, min_size=1, max_size=4).map("".join)


@given(st.lists(_FIELD, min_size=5, max_size=5).map(" ".join))
def test_the_pattern_admits_what_parses(expression: str) -> None:
    admitted = re.fullmatch(SCHEDULE_PATTERN, expression) is not None
    try:
        CronSchedule.parse(expression)
        parses = True
    except ValueError as error:
        parses = False
        reversed_range = "reversed" in str(error)
    assert admitted == parses or (admitted and reversed_range), expression


@pytest.mark.parametrize(
    "expression",
    ["0 3 * * 0", "*/15 * * * *", "0 12 1-7 * 7", "0 0 29 FEB *", "5-10/5 * * * mon-fri",
     "@daily", "@Weekly", "0 0 1,15 1-12/3 *", "00 07 * * *"],
)  # fmt: skip
def test_usual_schedules_are_admitted(expression: str) -> None:
    assert Triggers.model_validate({"schedule": expression}).schedule == expression


@pytest.mark.parametrize(
    "expression", ["61 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8",
                   "*/0 * * * *", "* * *", "@often", "* * * * FUNDAY"],
)  # fmt: skip
def test_out_of_range_schedules_are_refused_with_the_ranges(expression: str) -> None:
    with pytest.raises(ValidationError, match="minute 0-59, hour 0-23"):
        Triggers.model_validate({"schedule": expression})


def test_the_fields_are_the_usual_five() -> None:
    assert [(f.name, f.low, f.high) for f in FIELDS] == [
        ("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12),
        ("day of week", 0, 7),
    ]  # fmt: skip


def test_a_schedule_that_never_fires_makes_the_policy_not_ready() -> None:
    policy = DriftPolicy.model_validate(
        {
            "metadata": {"name": "leap", "namespace": "ml", "generation": 1},
            "spec": {"deployment": "iris", "action": "Alert",
                     "triggers": {"schedule": "0 0 30 2 *"}},
        }
    )  # fmt: skip
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    decision = evaluate(Evaluation(spec=policy.spec, now=now, readings=[]))

    status = evaluated_status(policy, [], decision, [], now)

    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSchedule")
    assert "never fires" in ready["message"]
