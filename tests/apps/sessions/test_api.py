from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_create_list_get(api, other_api):
    response = api.post("/api/v1/sessions", {"name": "exp-1"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "exp-1" and body["owner"] == "alice" and body["policy"]["name"] == "default"
    assert api.get(f"/api/v1/sessions/{body['id']}").json()["id"] == body["id"]
    assert [s["id"] for s in api.get("/api/v1/sessions").json()["results"]] == [body["id"]]
    assert other_api.get("/api/v1/sessions").json()["count"] == 0


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "x" * 201}, {"name": "a", "policy": "lax"}])
def test_invalid_session_is_400(api, body):
    response = api.post("/api/v1/sessions", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
