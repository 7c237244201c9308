"""Errors the server maps to HTTP statuses: client mistakes are 4xx with a message that helps."""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "ClientError",
    "DeadlineExceeded",
    "ExpiredRequestId",
    "InvalidInput",
    "LabelsBacklogged",
    "ModelNotFound",
    "PayloadTooLarge",
    "ServerNotReady",
    "Unauthorized",
    "UnknownRequestId",
    "UnsupportedMediaType",
    "outcomes",
]


class ArtifactError(Exception):
    """The model artifact or its card cannot be trusted or loaded; the server refuses to start."""


class ClientError(Exception):
    """A request the server refuses; ``status`` is the HTTP status sent back."""

    status = 400
    outcome = "invalid_input"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ClientError):
    """The body does not match the model's signature or the protocol."""


class PayloadTooLarge(ClientError):
    """The body or the number of rows is above the configured maximum."""

    status = 413
    outcome = "too_large"


class UnsupportedMediaType(ClientError):
    """The body is not JSON."""

    status = 415
    outcome = "unsupported_media_type"


class Unauthorized(ClientError):
    """The endpoint needs a bearer token and the request carries none, or another one."""

    status = 401
    outcome = "unauthorized"


class ModelNotFound(ClientError):
    """The path names a model this server does not serve."""

    status = 404
    outcome = "not_found"


class UnknownRequestId(ClientError):
    """Feedback names a request id this deployment never issued (or a mistyped one)."""

    status = 404
    outcome = "unknown_request_id"


class DeadlineExceeded(ClientError):
    """The request took longer than the server's deadline (``timeout_ms``); the server's fault."""

    status = 504
    outcome = "timeout"


class ExpiredRequestId(ClientError):
    """Feedback names a request predicted longer ago than the label retention."""

    status = 410
    outcome = "expired_request_id"


class LabelsBacklogged(ClientError):
    """The label log cannot take more labels until the store catches up."""

    status = 503
    outcome = "labels_backlogged"


class ServerNotReady(ClientError):
    """The server is draining for shutdown."""

    status = 503
    outcome = "not_ready"


def outcomes() -> tuple[str, ...]:
    """Every ``outcome`` label a request may be counted with: ok, error, each refusal's."""
    found: set[str] = set()
    pending: list[type[ClientError]] = [ClientError]
    while pending:
        kind = pending.pop()
        found.add(kind.outcome)
        pending.extend(kind.__subclasses__())
    return ("ok", "error", *sorted(found))
