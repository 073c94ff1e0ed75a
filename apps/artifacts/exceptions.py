"""What the artifact services raise: plain Python exceptions, mapped to HTTP by the API views.

They subclass ValueError so that a caller with no knowledge of artifacts (a run executor)
can still treat them as bad input.
"""

from __future__ import annotations


class ArtifactError(ValueError):
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ArtifactInvalid(ArtifactError):
    """The name, content type, session or run given for an artifact is not acceptable."""


class ArtifactTooLarge(ArtifactError):
    """The data is over ARTIFACT_MAX_BYTES; nothing was stored."""

    code = "artifact_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"Artifact exceeds {limit} bytes.")
        self.limit = limit
