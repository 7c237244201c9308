"""The dataset URI of a payload log, shared by the operator (which writes it) and the trainer.

::

    payloadlog+<root>?target=<column>&window=<seconds>&minRows=<n>

``<root>`` is the log's directory in the artifact store (``file:///…`` on the
mounted claim, or an object-store URI); ``target`` names the label column;
``window`` (seconds before now, optional: everything) and ``minRows`` bound what
is read. Standard library only: the operator imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

__all__ = ["SCHEME_PREFIX", "PayloadLogQuery", "parse_payload_log_uri", "payload_log_dataset_uri"]

SCHEME_PREFIX = "payloadlog+"


@dataclass(frozen=True)
class PayloadLogQuery:
    """What a ``payloadlog+`` URI asks for."""

    root: str
    target: str
    window_seconds: float | None = None
    min_rows: int = 1


def payload_log_dataset_uri(
    root: str, *, target: str, window_seconds: float | None = None, min_rows: int = 1
) -> str:
    """The dataset URI for the log under `root` (the inverse of `parse_payload_log_uri`)."""
    query: dict[str, str] = {"target": target, "minRows": str(min_rows)}
    if window_seconds is not None:
        query["window"] = f"{window_seconds:g}"
    return f"{SCHEME_PREFIX}{root.rstrip('/')}?{urlencode(query)}"


def parse_payload_log_uri(uri: str) -> PayloadLogQuery:
    """The query in a ``payloadlog+<root>?target=…`` URI; ValueError naming what is wrong."""
    if not uri.startswith(SCHEME_PREFIX):
        raise ValueError(f"{uri!r} is not a payload log URI; expected {SCHEME_PREFIX}<root>?...")
    parts = urlsplit(uri.removeprefix(SCHEME_PREFIX))
    if not parts.scheme or not parts.path.strip("/"):
        raise ValueError(f"{uri!r} names no log directory; expected e.g. {SCHEME_PREFIX}file:///…")
    query = {k: v[-1] for k, v in parse_qs(parts.query, strict_parsing=False).items()}
    unknown = sorted(set(query) - {"target", "window", "minRows"})
    if unknown or "target" not in query:
        raise ValueError(
            f"{uri!r}: expected the query keys target (required), window and minRows;"
            f" got {sorted(query)}"
        )
    try:
        window = float(query["window"]) if "window" in query else None
        min_rows = int(query.get("minRows", "1"))
    except ValueError as error:
        raise ValueError(f"{uri!r}: window must be seconds and minRows an integer") from error
    if (window is not None and window <= 0) or min_rows < 1:
        raise ValueError(f"{uri!r}: window must be positive and minRows at least 1")
    root = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return PayloadLogQuery(root, query["target"], window, min_rows)
