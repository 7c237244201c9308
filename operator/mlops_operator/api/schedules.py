"""The cron syntax of ``triggers.schedule``, in one place: the fields, their ranges and names.

Five fields (minute, hour, day of month, month, day of week; UTC), each ``*``, a
number, a range ``a-b``, a list ``a,b`` and a step ``*/n``, ``a/n`` or ``a-b/n``;
months and weekdays also take names (``JAN``, ``MON``; Sunday is 0 or 7); the
macros ``@hourly``, ``@daily``, ``@weekly``, ``@monthly``, ``@yearly``
(``@annually``) stand for their usual expansions.

The API server checks an expression at admission with `SCHEDULE_PATTERN` (a CEL
``matches`` whose message names the field and each range), generated from
`FIELDS`; the DriftPolicy controller parses it with
`mlops_operator.drift.schedule.CronSchedule`, built from the same `FIELDS`. What a
pattern cannot see (a reversed range such as ``5-1``, a date that never comes such
as 30 February) is found by the parser when the policy is reconciled
(``InvalidSchedule``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FIELDS", "MACROS", "SCHEDULE_MESSAGE", "SCHEDULE_PATTERN", "CronField"]


@dataclass(frozen=True)
class CronField:
    """One of the five fields."""

    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    """Names of the values ``first_named``, ``first_named + 1`` … (months from 1, days from 0)."""
    first_named: int = 0

    def value_of(self, name: str) -> int | None:
        """The number a name (any case) stands for, or None."""
        upper = name.upper()
        return self.first_named + self.names.index(upper) if upper in self.names else None


_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")

FIELDS: tuple[CronField, ...] = (
    CronField("minute", 0, 59),
    CronField("hour", 0, 23),
    CronField("day of month", 1, 31),
    CronField("month", 1, 12, _MONTHS, first_named=1),
    CronField("day of week", 0, 7, _DAYS, first_named=0),
)

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def _value_pattern(field: CronField) -> str:
    numbers = "|".join(str(n) for n in range(field.high, field.low - 1, -1))
    names = "".join(f"|(?i:{name})" for name in field.names)
    return f"(0*({numbers}){names})"


def _field_pattern(field: CronField) -> str:
    value = _value_pattern(field)
    element = rf"(\*|{value}(-{value})?)(/0*[1-9][0-9]*)?"
    return f"{element}(,{element})*"


SCHEDULE_PATTERN = (
    "^(?i:"
    + "|".join(MACROS)
    + ")$|^"
    + r"\s+".join(_field_pattern(field) for field in FIELDS)
    + "$"
)
"""What the API server admits (RE2 syntax, which Python's ``re`` reads the same way)."""

SCHEDULE_MESSAGE = (
    "`schedule` must be 5 cron fields: minute 0-59, hour 0-23, day of month 1-31, month 1-12"
    " or JAN-DEC, day of week 0-7 or SUN-SAT (each *, a value, a range a-b, a list a,b or a"
    " step */n), or a macro such as @daily"
)
