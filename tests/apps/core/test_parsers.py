"""Request bodies are UTF-8 JSON: any other charset is a 415 before the body is read."""

from __future__ import annotations

import bz2
import tracemalloc

import pytest

pytestmark = pytest.mark.django_db

# Codecs Python's codecs.decode accepts that are not text encodings (or not UTF-8):
# bz2 and zlib decompress after the size check, the others used to answer 500.
REFUSED_CHARSETS = ["bz2", "zlib", "base64", "hex", "quopri", "rot13", "latin-1", "utf-16", "nonesuch"]


@pytest.mark.parametrize("charset", REFUSED_CHARSETS)
def test_a_charset_other_than_utf8_is_a_415_in_the_error_shape(api, charset):
    response = api.post(
        "/api/v1/sessions", data=b'{"name": "x"}', content_type=f"application/json; charset={charset}"
    )

    assert response.status_code == 415, response.content
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert "UTF-8" in response.json()["error"]["message"]


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", "utf8", "U8", "utf_8"])
def test_utf8_and_its_aliases_are_accepted(api, charset):
    response = api.post(
        "/api/v1/sessions",
        data='{"name": "café"}'.encode(),
        content_type=f"application/json; charset={charset}",
    )

    assert response.status_code == 201, response.content
    assert response.json()["name"] == "café"


def test_a_compressed_body_is_never_decompressed(api):
    # given a 64 MiB body compressed twice into a few hundred bytes (the reported bomb:
    # 276 bytes that made a worker allocate 1 GB)
    bomb = bz2.compress(bz2.compress(b"\0" * (64 * 1024 * 1024)))
    assert len(bomb) < 1024

    tracemalloc.start()
    try:
        response = api.post("/api/v1/sessions", data=bomb, content_type="application/json; charset=bz2")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert response.status_code == 415
    # decompressing would have held the 64 MiB (once as bytes, again as text)
    assert peak < 8 * 1024 * 1024, peak
