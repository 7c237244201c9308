"""Durations as the API writes them (``30s``, ``5m``, ``1h30m``, ``1.5h``), in seconds.

The syntax is Go's ``time.ParseDuration`` restricted to ms/s/m/h, which is what
the CRD's pattern admits and what CEL's ``duration()`` parses, so the operator
reads a duration exactly as the API server's rules compared it.
"""

from __future__ import annotations

import re

__all__ = ["parse_duration", "promql_duration"]

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
