"""What the artifact services raise: the project's ApplicationError family (mapped to the
error shape by the API's one exception handler).

They are ValueErrors too, so that a caller with no knowledge of artifacts (a run
executor) can still treat them as bad input.
"""

from __future__ import annotations

from apps.core.exceptions import ApplicationError


class ArtifactError(ApplicationError, ValueError):
    code = "invalid"
    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message, fields={field or "non_field_errors": [message]})
        self.field = field


class ArtifactInvalid(ArtifactError):
    """The name, content type, session or run given for an artifact is not acceptable."""


class ArtifactTooLarge(ArtifactError):
    """The data is over ARTIFACT_MAX_BYTES; nothing was stored."""

    code = "request_too_large"
    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"Artifact exceeds {limit} bytes.")
        self.fields = {}
        self.limit = limit
