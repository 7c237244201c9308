"""Errors the server maps to HTTP statuses: client mistakes are 4xx with a message that helps."""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "CanaryUnreachable",
    "ClientError",
    "DeadlineExceeded",
    "InvalidInput",
    "ModelNotFound",
    "PayloadTooLarge",
    "ServerNotReady",
    "UnknownRequestId",
    "UnsupportedMediaType",
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


class ModelNotFound(ClientError):
    """The path names a model this server does not serve."""

    status = 404
    outcome = "not_found"


class UnknownRequestId(ClientError):
    """Feedback names a request id this server does not remember."""

    status = 404
    outcome = "unknown_request_id"


class DeadlineExceeded(ClientError):
    """The request took longer than the server's deadline (``timeout_ms``); the server's fault."""

    status = 504
    outcome = "timeout"


class CanaryUnreachable(ClientError):
    """Feedback for requests the canary answered could not be passed on to it."""

    status = 502
    outcome = "canary_unreachable"


class ServerNotReady(ClientError):
    """The server is draining for shutdown."""

    status = 503
    outcome = "not_ready"
