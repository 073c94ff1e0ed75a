from __future__ import annotations

import codecs
import json
from typing import Any

from django.conf import settings
from django.utils.http import parse_header_parameters
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from apps.core.exceptions import RequestTooLarge, UnsupportedMediaType
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
        # Before reading: a refused charset costs nothing. From the header itself: Django
        # quietly drops a charset it has no codec for, which would then pass as UTF-8.
        _, params = parse_header_parameters(media_type or "")
        encoding = body_charset(params.get("charset", "utf-8"))
        limit = settings.MAX_REQUEST_BODY_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise RequestTooLarge(f"Request body exceeds {limit} bytes.")
        try:
            text = raw.decode(encoding)
            value = json.loads(text, parse_constant=_reject_constant)
        except RecursionError as exc:
            raise ParseError(f"JSON nested deeper than {MAX_BODY_JSON_DEPTH} levels (the limit).") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        if json_depth_exceeds(value, MAX_BODY_JSON_DEPTH):
            raise ParseError(f"JSON nested deeper than {MAX_BODY_JSON_DEPTH} levels (the limit).")
        return value


def body_charset(name: str) -> str:
    """The codec for a body's declared charset: UTF-8 (any of its aliases) only.

    codecs.decode takes any codec Python has, and some are not text encodings at all:
    `charset=bz2` or `zlib` would decompress a small body past the size limit after it
    was checked, `rot13` or `base64` would fail with a 500. JSON is UTF-8 (RFC 8259).
    """
    try:
        codec = codecs.lookup(name)
    except (LookupError, TypeError, ValueError):
        codec = None
    if codec is None or codec.name != "utf-8":
        raise UnsupportedMediaType(
            f"Unsupported charset {name[:40]!r}: request bodies must be UTF-8.",
            fields={"charset": [name[:40]]},
        )
    return "utf-8"


def _reject_constant(name: str) -> None:
    # NaN / Infinity are not JSON and would not survive a round trip to the database.
    raise ValueError(f"{name} is not valid JSON")
