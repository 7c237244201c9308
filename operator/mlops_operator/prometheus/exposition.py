"""Read a ``/metrics`` endpoint directly, for when no Prometheus server is configured.

The text is parsed with prometheus_client's own parser; each sample becomes a
`Sample` whose labels include ``__name__`` (with its ``_total``/``_bucket``
suffix), the same shape a Prometheus instant query returns.
"""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from mlops_operator.prometheus.client import Sample

__all__ = ["MAX_BYTES", "ScrapeError", "parse_exposition", "read_bounded", "scrape"]


class ScrapeError(Exception):
    """The endpoint could not be read, or its text is not the Prometheus exposition format."""


def parse_exposition(text: str) -> list[Sample]:
    """Every sample of a Prometheus text exposition."""
    try:
        return [
            Sample(
                {"__name__": s.name, **s.labels},
                float(s.value),
                None if s.timestamp is None else float(s.timestamp),
            )
            for family in text_string_to_metric_families(text)
            for s in family.samples
        ]
    except ValueError as error:
        raise ScrapeError(f"not the Prometheus text format: {error}{_culprit(text)}") from error


def _culprit(text: str) -> str:
    """`` (line N: ...)`` for the first line the parser refuses on its own, or ``""``."""
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            list(text_string_to_metric_families(line + "\n"))
        except ValueError:
            return f" (line {number}: {line[:200]!r})"
    return ""


_TIMEOUT = aiohttp.ClientTimeout(total=5)
MAX_BYTES = 16 * 1024 * 1024
"""Largest exposition read by default; a serving pod's is a few hundred kilobytes."""


async def read_bounded(response: aiohttp.ClientResponse, url: str, max_bytes: int) -> bytes:
    """The body of `response`, refusing a redirect and anything longer than `max_bytes`."""
    if 300 <= response.status < 400:
        where = response.headers.get("Location", "?")
        raise ScrapeError(
            f"{url} answered a redirect (HTTP {response.status} to {where}); not followed"
        )
    body = await response.content.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise ScrapeError(f"{url} answered more than {max_bytes} bytes; not read")
    return body


async def scrape(
    url: str, *, session: aiohttp.ClientSession | None = None, max_bytes: int = MAX_BYTES
) -> list[Sample]:
    """GET `url` (a ``/metrics`` endpoint) and parse it; `ScrapeError` if that fails.

    Redirects are not followed and at most `max_bytes` are read: the URL comes from a
    pod, and a pod is the tenant's. Without `session` a short-lived one is used, with a
    5 s deadline.
    """
    own = session is None
    client = session or aiohttp.ClientSession(timeout=_TIMEOUT)
    try:
        async with client.get(url, allow_redirects=False) as response:
            body = await read_bounded(response, url, max_bytes)
            if response.status != 200:
                raise ScrapeError(f"{url} answered HTTP {response.status}")
    except (aiohttp.ClientError, TimeoutError) as error:
        raise ScrapeError(f"cannot read {url}: {error}") from error
    finally:
        if own:
            await client.close()
    return parse_exposition(body.decode("utf-8", errors="replace"))
