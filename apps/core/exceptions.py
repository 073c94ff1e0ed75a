"""The project's own exceptions: what services and selectors raise.

Services speak the domain, not HTTP (HackSoft's ApplicationError pattern): they
raise these, never DRF's exceptions, so the API, the admin, the CLI and a worker
all get the same rules. apps.core.errors.exception_handler maps each to the one
error shape and its status; `status` is only that mapping's hint.
"""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """A request the domain refuses. `code` is stable (clients branch on it)."""

    code = "invalid"
    status = 400
    default_message = "The request is invalid."
    # Seconds after which the same request may succeed (sent as Retry-After), when known.
    retry_after: int | None = None

    def __init__(self, message: str | None = None, *, fields: dict[str, Any] | None = None) -> None:
        self.message = message or self.default_message
        self.fields = fields or {}
        super().__init__(self.message)


class ValidationFailed(ApplicationError):
    """Input that breaks a rule; `fields` maps each input field to its problems."""

    code = "invalid"
    status = 400
    default_message = "Invalid input."


class NotFound(ApplicationError):
    """Missing, or not visible to the caller (a foreign id looks missing, never forbidden)."""

    code = "not_found"
    status = 404
    default_message = "Not found."


class PermissionDenied(ApplicationError):
    code = "permission_denied"
    status = 403
    default_message = "You do not have permission to do this."


class Conflict(ApplicationError):
    code = "conflict"
    status = 409
    default_message = "The request conflicts with the current state of the resource."


class RequestTooLarge(ApplicationError):
    code = "request_too_large"
    status = 413
    default_message = "Request body is too large."


class UnsupportedMediaType(ApplicationError):
    code = "unsupported_media_type"
    status = 415
    default_message = "Unsupported media type."


class Overloaded(ApplicationError):
    """Refused for now because the platform is busy (a backed-up queue), not because of the
    request: the same request may succeed after `retry_after` seconds."""

    code = "overloaded"
    status = 429
    default_message = "Too busy to accept this now; retry later."

    def __init__(
        self, message: str | None = None, *, retry_after: int, fields: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, fields=fields)
        self.retry_after = retry_after
