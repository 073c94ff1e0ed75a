"""Exit codes a script can trust, and the error that carries one."""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    OK = 0
    USAGE = 2  # a bad command line, or a file (payload, bundle) that cannot be read or parsed
    AUTH = 3  # no credentials, a key the server refuses (401), or a role the action needs (403)
    NOT_FOUND = 4  # no such run, trace, session or artifact (or not yours)
    REFUSED = 5  # the API refused the request (400, 409, 413, 422, 429...): its message says why
    RUN_FAILED = 6  # the run ended failed, dead or cancelled
    HELD = 7  # governance holds it: the run is blocked, or its result withheld for review
    UNAVAILABLE = 8  # the server cannot be reached, timed out or failed (5xx)
    VERIFY_FAILED = 9  # a bundle, or a download, does not match its SHA-256
    NOT_FINISHED = 10  # the run is still going (after --timeout, or asked for its result early)
    INTERRUPTED = 130  # Ctrl-C


class CliError(Exception):
    """Ends the command with `code` after printing `message` (and, with --json, `body`)."""

    def __init__(self, message: str, code: ExitCode, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.body = body
