"""Durations, in one place: how the API writes them, how the API server and the operator read them.

The syntax is Go's ``time.ParseDuration`` restricted to ms/s/m/h (``30s``, ``5m``,
``1h30m``, ``1.5h``). Three readers must agree on it, so all three come from here:

- the CRD's pattern (`DURATION_PATTERN`, on every `Duration` field), which the API
  server checks at admission;
- CEL's ``duration()``, which the CRDs' cross-field rules use to compare two
  durations (``format: duration`` on the field; CEL parses Go's syntax);
- `parse_duration`, which every controller uses to turn a field into seconds.

A test checks that the pattern and `parse_duration` accept exactly the same strings,
and another that the API server's ``duration()`` reads them as `parse_duration` does.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

__all__ = ["DURATION_PATTERN", "Duration", "parse_duration", "promql_duration"]

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
"""The wire syntax (RE2, as the API server evaluates patterns with Go's regexp)."""

_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in ``text``; raises ``ValueError`` naming the expected form."""
    position, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _SECONDS[match.group(2)]
        position = match.end()
    if not text or position != len(text):
        raise ValueError(
            f"invalid duration {text!r}; expected numbers with units ms, s, m or h, e.g. 90s or 1h30m"
        )
    return total


def promql_duration(seconds: float) -> str:
    """``seconds`` as a PromQL range (whole milliseconds, at least 1ms), e.g. ``300000ms``."""
    return f"{max(1, round(seconds * 1000))}ms"


def _readable(text: str) -> str:
    parse_duration(text)
    return text


Duration = Annotated[
    str,
    Field(max_length=32, pattern=DURATION_PATTERN, json_schema_extra={"format": "duration"}),
    AfterValidator(_readable),
]
"""A duration field such as ``30s``, ``5m``, ``1h30m`` or ``1.5h``."""
