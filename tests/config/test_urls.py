"""The URLconf: every API route with or without its trailing slash, an index at /api/v1/,
and API docs that load nothing from outside the server."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

SAMPLE_VALUES = {
    "uuid": str(uuid.UUID(int=7)),
    "int": "7",
    "str": "abc",
    "slug": "abc",
    "path": "a/b",
    "workspace_path": "a/b",
}


def _routes(patterns: list[URLPattern | URLResolver], prefix: str = "") -> Iterator[str]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if pattern.app_name == "admin":
                continue  # Django's admin: its own URLs, slashes and redirects
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern)


def _concrete(route: str) -> str:
    return "/" + re.sub(r"<(?:(\w+):)?\w+>", lambda match: SAMPLE_VALUES[match.group(1) or "str"], route)


ROUTES = sorted(_routes(get_resolver().url_patterns))


def test_the_walk_finds_the_api():
    expected = {"api/v1/", "api/v1/runs", "api/v1/runs/<uuid:run_id>/cancel", "api/v1/docs/", "health"}
    assert expected <= set(ROUTES)


@pytest.mark.parametrize("route", ROUTES)
def test_every_route_resolves_with_and_without_its_trailing_slash(route: str):
    given = _concrete(route)
    other = given[:-1] if given.endswith("/") else given + "/"
    assert other != "/"
    match, other_match = resolve(given), resolve(other)
    assert (other_match.func, other_match.kwargs) == (match.func, match.kwargs)
    assert other_match.url_name == match.url_name


def test_both_forms_answer_every_method(api: APIClient, user: object):
    # POST: a redirect would lose the body, so both forms create
    for url in ("/api/v1/sessions", "/api/v1/sessions/"):
        response = api.post(url, {"name": url}, format="json")
        assert response.status_code == 201, (url, response.json())
    session = response.json()["id"]
    for url in (f"/api/v1/sessions/{session}", f"/api/v1/sessions/{session}/"):
        assert api.get(url).json()["id"] == session
    for url in ("/api/v1/schema", "/api/v1/schema/", "/api/v1/docs", "/api/v1/docs/", "/api/v1", "/api/v1/"):
        assert api.get(url).status_code == 200, url
    assert api.get("/api/v1/sessionsx").status_code == 404


def test_the_api_index_lists_where_each_part_is_without_auth(api: APIClient):
    for url in ("/api/v1/", "/api/v1"):
        response = APIClient().get(url)
        assert response.status_code == 200
        index = response.json()
        assert set(index) == {"name", "version", "authentication", "endpoints", "documentation"}
        assert index["version"] == "v1"
    assert index["endpoints"]["runs"] == "http://testserver/api/v1/runs"
    assert index["documentation"]["swagger_ui"] == "http://testserver/api/v1/docs/"
    assert {"sessions", "runs", "runs_batch", "traces", "api_keys", "rd_curve", "rd_knee"} <= set(
        index["endpoints"]
    )
    for url in [*index["endpoints"].values(), *index["documentation"].values()]:
        # a real route (GET may be the wrong method, or want parameters, but never a 404)
        assert api.get(url).status_code in (200, 400, 403, 405), url  # 403: a reviewer's or admin's page


def test_the_docs_page_loads_its_assets_from_this_server(api: APIClient):
    html = api.get("/api/v1/docs/").content.decode()
    assets = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert len(assets) >= 4  # css, favicon, bundle, preset
    assert all(url.startswith("/static/drf_spectacular_sidecar/") for url in assets), assets
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
