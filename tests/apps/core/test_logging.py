from __future__ import annotations

import json
import logging

import pytest
from django.test import Client

from apps.core.logging import JsonFormatter, request_id_var, run_id_var


def test_log_lines_are_json_with_the_current_ids():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    request_token, run_token = request_id_var.set("req-1"), run_id_var.set("run-9")
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(request_token)
        run_id_var.reset(run_token)
    assert line["message"] == "hello world" and line["level"] == "INFO"
    assert line["request_id"] == "req-1" and line["run_id"] == "run-9"


@pytest.mark.django_db
def test_request_id_is_echoed_or_made():
    client = Client()
    assert client.get("/health", HTTP_X_REQUEST_ID="abc-123")["X-Request-ID"] == "abc-123"
    made = client.get("/health", HTTP_X_REQUEST_ID="bad id with spaces")["X-Request-ID"]
    assert made != "bad id with spaces" and len(made) == 32


@pytest.mark.django_db
def test_a_request_id_ending_in_a_newline_is_replaced_not_echoed():
    # echoed, it broke the response's headers (BadHeaderError: a 500 on every endpoint)
    response = Client().get("/health", HTTP_X_REQUEST_ID="abc-123\n")
    assert response.status_code == 200
    assert response["X-Request-ID"] != "abc-123\n" and len(response["X-Request-ID"]) == 32
