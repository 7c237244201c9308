"""How the pages write numbers, times and digests (Jinja2 filters); pure."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

__all__ = ["FILTERS", "age", "duration", "number", "plural", "pretty", "short", "when"]


def _parse(stamp: Any) -> datetime | None:
    if isinstance(stamp, datetime):
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(str(stamp))
    except ValueError:
        return None


def when(stamp: Any) -> str:
    """``2026-12-02 08:00:05 UTC``; ``-`` when absent."""
    moment = _parse(stamp)
    if moment is None:
        return "-" if stamp in (None, "") else str(stamp)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def age(stamp: Any, now: datetime | None = None) -> str:
    """How long ago, as kubectl prints ages: ``45s``, ``12m``, ``3h``, ``5d``."""
    moment = _parse(stamp)
    if moment is None:
        return "-"
    seconds = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size or (unit == "m" and seconds >= size):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def duration(seconds: Any) -> str:
    """``1h 5m``, ``3m 20s``, ``42s``."""
    if not isinstance(seconds, int | float) or seconds < 0:
        return "-"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def number(value: Any, digits: int = 4) -> str:
    """A measurement with `digits` significant digits; ``-`` when absent."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-" if value is None else str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}g}"


def short(digest: Any, length: int = 12) -> str:
    """The first characters of a sha256 (or any long identifier)."""
    text = str(digest or "")
    return text[:length] if text else "-"


def plural(kind: str) -> str:
    """``ModelVersions``, ``DriftPolicies``."""
    return kind[:-1] + "ies" if kind.endswith("y") else kind + "s"


def pretty(value: Any) -> str:
    """A small structure as one line of JSON, keys sorted."""
    return json.dumps(value, sort_keys=True, separators=(", ", ": "))


FILTERS: dict[str, Callable[..., str]] = {
    "age": age,
    "duration": duration,
    "number": number,
    "plural": plural,
    "pretty": pretty,
    "short": short,
    "when": when,
}
