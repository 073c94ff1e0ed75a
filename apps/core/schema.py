"""The OpenAPI schema tells the whole truth: every operation lists the errors it can
answer, in the one error shape (drf-spectacular postprocessing hook)."""

from __future__ import annotations

from typing import Any

ERROR_COMPONENT = "Error"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The one shape of every error the API answers.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "Stable: clients branch on it."},
                "message": {"type": "string", "description": "For people."},
                "fields": {
                    "type": "object",
                    "additionalProperties": True,
                    "description": "Each input field (or header, or query parameter) and its problems.",
                },
            },
            "required": ["code", "message", "fields"],
        }
    },
    "required": ["error"],
}

# Every operation can meet each of these: credentials are checked before the method (401),
# bodies before the view (413, 415), rate limits on every request (429), and a database
# outage on any of them (503).
ERROR_RESPONSES: dict[int, str] = {
    400: (
        "Invalid input; `fields` names each problem. Strings may not contain NUL (U+0000); names "
        "are trimmed of surrounding whitespace, and their length limit counts what was sent."
    ),
    401: "No credentials, or credentials that are not valid (unknown, revoked or expired).",
    403: "Not allowed: the caller's role, an API key where a password-backed login is needed, "
    "or a session login without its CSRF token.",
    404: "Not found, or not the caller's (another user's id is a 404, never a 403).",
    405: "Method not allowed.",
    409: "Conflicts with the state of the resource.",
    413: "Request body over the limit (MAX_REQUEST_BODY_BYTES, or the endpoint's own).",
    415: "Not JSON, or a charset other than UTF-8.",
    429: "Rate limit reached: retry after `Retry-After` seconds.",
    503: "The database is unavailable for a moment (nothing was stored): retry after `Retry-After` seconds.",
}

RETRY_AFTER_HEADER = {
    "Retry-After": {"schema": {"type": "integer", "minimum": 0}, "description": "Seconds to wait."}
}


def document_errors(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """POSTPROCESSING_HOOKS entry: the error shape as a component, and every error status
    on every operation that does not document its own."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    reference = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status, description in ERROR_RESPONSES.items():
                response = operation["responses"].setdefault(
                    str(status),
                    {"description": description, "content": {"application/json": {"schema": reference}}},
                )
                if status in (429, 503):
                    response.setdefault("headers", {}).update(RETRY_AFTER_HEADER)
    return result
