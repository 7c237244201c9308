"""Cron schedules: fields, names, steps, macros, the day-of-month/day-of-week rule, due times."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mlops_operator.api.schedules import CronSchedule


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("*/15 * * * *", "2026-01-01T10:07:30", "2026-01-01T10:15:00"),
        ("0 3 * * 0", "2026-01-01T00:00:00", "2026-01-04T03:00:00"),  # the next Sunday
        ("0 3 * * SUN", "2026-01-04T03:00:00", "2026-01-11T03:00:00"),
        ("30 2 1 * *", "2026-01-31T00:00:00", "2026-02-01T02:30:00"),
        ("0 0 29 FEB *", "2026-03-01T00:00:00", "2028-02-29T00:00:00"),
        ("@daily", "2026-05-05T23:59:00", "2026-05-06T00:00:00"),
        ("@hourly", "2026-05-05T10:00:00", "2026-05-05T11:00:00"),
        ("0 12 1-7 * 7", "2026-01-02T13:00:00", "2026-01-03T12:00:00"),  # day 3, or any Sunday
        ("5-10/5 * * * *", "2026-01-01T00:06:00", "2026-01-01T00:10:00"),
    ],
)
def test_next_occurrence(expression: str, after: str, expected: str) -> None:
    assert CronSchedule.parse(expression).next_after(at(after)) == at(expected)


def test_first_between_says_whether_it_fell_due() -> None:
    schedule = CronSchedule.parse("*/5 * * * *")
    assert schedule.first_between(at("2026-01-01T00:01:00"), at("2026-01-01T00:05:00")) == at(
        "2026-01-01T00:05:00"
    )
    assert schedule.first_between(at("2026-01-01T00:05:00"), at("2026-01-01T00:09:59")) is None


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * *", "has 3 fields"),
        ("61 * * * *", "minute"),
        ("* * * 13 *", "month"),
        ("* * * * FUNDAY", "day of week"),
        ("*/0 * * * *", "positive"),
        ("5-1 * * * *", "reversed"),
    ],
)
def test_bad_schedules_name_the_field(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CronSchedule.parse(expression)


def test_a_schedule_that_never_fires_is_refused() -> None:
    with pytest.raises(ValueError, match="never fires"):
        CronSchedule.parse("0 0 30 2 *").next_after(at("2026-01-01T00:00:00"))
