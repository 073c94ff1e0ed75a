from __future__ import annotations

import codecs
import json
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from apps.core.exceptions import RequestTooLarge
from apps.core.validators import json_depth_exceeds

MAX_BODY_JSON_DEPTH = 64
"""Deepest nesting a request body may have; payloads have their own, lower limit."""


class LimitedJSONParser(parsers.JSONParser):
    """JSON parser that never reads more than MAX_REQUEST_BODY_BYTES.

    DRF parses straight from the WSGI stream, so Django's
    DATA_UPLOAD_MAX_MEMORY_SIZE never applies; a chunked body has no
    Content-Length for the middleware to check either.
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.MAX_REQUEST_BODY_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise RequestTooLarge(f"Request body exceeds {limit} bytes.")
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.decode(raw, encoding)
            value = json.loads(text, parse_constant=_reject_constant)
        except RecursionError as exc:
            raise ParseError(f"JSON nested deeper than {MAX_BODY_JSON_DEPTH} levels (the limit).") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        if json_depth_exceeds(value, MAX_BODY_JSON_DEPTH):
            raise ParseError(f"JSON nested deeper than {MAX_BODY_JSON_DEPTH} levels (the limit).")
        return value


def _reject_constant(name: str) -> None:
    # NaN / Infinity are not JSON and would not survive a round trip to the database.
    raise ValueError(f"{name} is not valid JSON")
