"""The API server's refusals as exceptions, with what its Status body said.

Handlers catch the few they act on (`NotFound`, `Conflict`) and let the rest
propagate: Kopf retries any exception with backoff, and the operator's metrics
count it. `ApiError.retryable` says whether waiting can help (throttling,
conflicts, server errors), for handlers that turn errors into a
`kopf.TemporaryError` with the server's ``Retry-After``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ApiError", "Conflict", "NotFound", "Unauthorized", "error_from"]


class ApiError(Exception):
    """The API server refused a request."""

    def __init__(
        self, status: int, reason: str, message: str, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed later without anyone changing anything."""
        return self.status in (409, 429) or self.status >= 500


class Unauthorized(ApiError):
    """401: the API server does not accept the credentials (nor fresh ones, where a plugin
    or token file could give them: `KubeClient` asks once more before raising this)."""


class NotFound(ApiError):
    """404: the object (or its namespace, or its kind) does not exist."""


class Conflict(ApiError):
    """409: the object already exists, or changed since it was read."""


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare from the API server; the caller's backoff applies


def error_from(status: int, payload: Any, retry_after: str | None = None) -> ApiError:
    """The exception for an HTTP error `status` with the API server's `payload` (a Status)."""
    body = payload if isinstance(payload, dict) else {}
    reason = str(body.get("reason") or "Unknown")
    message = str(body.get("message") or payload or "no message")
    kind = {401: Unauthorized, 404: NotFound, 409: Conflict}.get(status, ApiError)
    return kind(status, reason, message, _seconds(retry_after))
