"""Five-field cron schedules (UTC), enough to tell whether a retrain fell due.

The syntax (fields, ranges, names, macros) is `mlops_operator.api.schedules`,
which the CRD's admission check is generated from too. As in Vixie cron, when
both day of month and day of week are restricted, a day matching either one
matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mlops_operator.api.schedules import FIELDS, MACROS, CronField

__all__ = ["CronSchedule"]

# The longest gap between two occurrences of any valid schedule (29 February every
# four years, or 31 in a month list that rarely has one) is under nine years.
_HORIZON = timedelta(days=366 * 9)


def _value(token: str, field: CronField) -> int:
    named = field.value_of(token)
    if named is not None:
        return named
    if not token.isdigit():
        raise ValueError(f"cron {field.name}: {token!r} is not a number or a known name")
    return int(token)


def _parse_field(text: str, field: CronField) -> frozenset[int]:
    low, high = field.low, field.high
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() else 0 if step_text else 1
        if step < 1:
            raise ValueError(f"cron {field.name}: step in {part!r} must be a positive number")
        if body == "*":
            start, end = low, high
        elif "-" in body:
            first, _, last = body.partition("-")
            start, end = _value(first, field), _value(last, field)
        else:
            start = end = _value(body, field)
            if step_text:
                end = high
        if not low <= start <= end <= high:
            raise ValueError(f"cron {field.name}: {part!r} is outside {low}-{high} or reversed")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed schedule; `parse` builds it, `first_between` asks whether it fell due."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        """The schedule of ``expression``; raises ``ValueError`` saying which field is wrong."""
        text = MACROS.get(expression.strip().lower(), expression.strip())
        parts = text.split()
        if len(parts) != len(FIELDS):
            raise ValueError(
                f"cron {expression!r} has {len(parts)} fields; expected 5 (minute hour"
                " day-of-month month day-of-week) or a macro such as @daily"
            )
        sets = [_parse_field(part, field) for part, field in zip(parts, FIELDS, strict=True)]
        weekdays = frozenset(d % 7 for d in sets[4])
        return cls(sets[0], sets[1], sets[2], sets[3], weekdays, parts[2] != "*", parts[4] != "*")

    def _day_matches(self, moment: datetime) -> bool:
        day_ok = moment.day in self.days
        weekday_ok = (moment.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return day_ok or weekday_ok
        return day_ok and weekday_ok

    def matches(self, moment: datetime) -> bool:
        """Whether the minute of ``moment`` (UTC) is an occurrence."""
        moment = moment.astimezone(UTC)
        return (
            moment.minute in self.minutes
            and moment.hour in self.hours
            and moment.month in self.months
            and self._day_matches(moment)
        )

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after ``moment``."""
        current = moment.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = current + _HORIZON
        while current < limit:
            if current.month not in self.months:
                current = (current.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(
                    day=1
                )
            elif not self._day_matches(current):
                current = current.replace(hour=0, minute=0) + timedelta(days=1)
            elif current.hour not in self.hours:
                current = current.replace(minute=0) + timedelta(hours=1)
            elif current.minute not in self.minutes:
                current += timedelta(minutes=1)
            else:
                return current
        raise ValueError("the schedule never fires (e.g. 30 February)")

    def first_between(self, start: datetime, end: datetime) -> datetime | None:
        """The first occurrence in ``(start, end]``, or None: whether the schedule fell due."""
        occurrence = self.next_after(start)
        return occurrence if occurrence <= end else None
