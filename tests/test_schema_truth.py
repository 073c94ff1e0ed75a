"""The OpenAPI schema declares what the API enforces, and the API enforces what it declares:
error responses on every operation, typed query parameters, batch and header limits, names."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from drf_spectacular.generators import SchemaGenerator

from apps.core.schema import ERROR_RESPONSES

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema: dict):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            yield f"{method.upper()} {path}", operation


def test_every_operation_documents_every_error_in_the_error_shape(schema):
    error = schema["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["required"] == ["code", "message", "fields"]
    operations = list(_operations(schema))
    assert len(operations) > 30
    for label, operation in operations:
        for status in (400, 401, 403, 404, 405, 409, 413, 415, 429):
            assert str(status) in operation["responses"], (label, status)
        assert set(ERROR_RESPONSES) <= {int(code) for code in operation["responses"] if code.isdigit()}
        assert "Retry-After" in operation["responses"]["429"]["headers"], label
    runs = schema["paths"]["/api/v1/runs"]["post"]["responses"]
    assert runs["404"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_rd_query_parameters_are_uuids_and_the_api_says_so(schema, api):
    for path in ("/api/v1/rd/curve", "/api/v1/rd/knee"):
        parameters = {p["name"]: p["schema"] for p in schema["paths"][path]["get"]["parameters"]}
        assert parameters["run"] == {"type": "string", "format": "uuid"}
        assert parameters["session"] == {"type": "string", "format": "uuid"}
        response = api.get(f"{path}?run=not-a-uuid")
        assert response.status_code == 400 and "run" in response.json()["error"]["fields"]


def test_pagination_parameters_are_declared_and_checked(schema, api):
    parameters = {p["name"]: p["schema"] for p in schema["paths"]["/api/v1/sessions"]["get"]["parameters"]}
    assert parameters["limit"] == {"type": "integer", "minimum": 1}
    assert parameters["offset"] == {"type": "integer", "minimum": 0}
    for query in ("limit=abc", "limit=0", "offset=-1", "offset=1.5", "limit=1&limit=2"):
        response = api.get(f"/api/v1/sessions?{query}")
        assert response.status_code == 400, query
    assert api.get("/api/v1/sessions?limit=100000").status_code == 200  # capped, not refused


def test_the_batch_limit_is_declared_and_enforced(schema, api, session):
    runs = schema["components"]["schemas"]["RunBatchSubmitInputRequest"]["properties"]["runs"]
    assert runs["maxItems"] == settings.MAX_BATCH_RUNS and runs["minItems"] == 1
    assert runs["items"] == {"$ref": "#/components/schemas/RunSubmitInputRequest"}
    one = {"session": str(session.pk), "kind": "echo", "payload": {}}

    response = api.post("/api/v1/runs/batch", {"runs": [one] * (settings.MAX_BATCH_RUNS + 1)}, format="json")

    assert response.status_code == 400 and "runs" in response.json()["error"]["fields"]


@pytest.mark.parametrize(
    "key", ["demo-1", "x" * 255, "x" * 256, "has space", "tab\there", "café", "~!@#$%^&*()", "a\x7f"]
)
def test_the_idempotency_key_rule_is_the_schemas(schema, api, key):
    parameter = next(
        p
        for p in schema["paths"]["/api/v1/runs/batch"]["post"]["parameters"]
        if p["name"] == "Idempotency-Key"
    )
    declared = parameter["schema"]
    allowed_by_schema = bool(re.search(declared["pattern"], key)) and len(key) <= declared["maxLength"]

    # an empty batch: the key is checked first, then the body is refused for being empty
    response = api.post("/api/v1/runs/batch", {"runs": []}, format="json", HTTP_IDEMPOTENCY_KEY=key)

    assert response.status_code == 400
    assert ("Idempotency-Key" not in response.json()["error"]["fields"]) == allowed_by_schema, key


def test_names_are_declared_as_they_are_checked(schema, api):
    name = schema["components"]["schemas"]["SessionCreateInputRequest"]["properties"]["name"]
    assert name["maxLength"] == 200 and name["minLength"] == 1
    pattern = re.compile(name["pattern"])
    cases = {
        "x" * 200: True,
        "x" * 200 + " ": False,  # used to pass: trimmed to 200 before the length check
        "  demo  ": True,
        "   ": False,
        "a\x00b": False,
        "": False,
    }
    for value, valid in cases.items():
        assert (bool(pattern.search(value)) and 1 <= len(value) <= 200) == valid, repr(value)
        response = api.post("/api/v1/sessions", {"name": value}, format="json")
        assert response.status_code == (201 if valid else 400), (repr(value), response.json())
    assert api.get("/api/v1/sessions").json()["results"][0]["name"] in ("demo", "x" * 200)


def test_nul_refusal_is_documented(schema):
    assert "NUL" in ERROR_RESPONSES[400]
    assert "NUL" in schema["paths"]["/api/v1/sessions"]["post"]["responses"]["400"]["description"]
