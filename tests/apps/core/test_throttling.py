from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.throttling import SimpleRateThrottle

pytestmark = pytest.mark.django_db


def test_over_the_rate_is_429_with_retry_after(api, monkeypatch):
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"user": "2/min", "anon": "2/min"})
    cache.clear()
    assert api.get("/api/v1/sessions").status_code == 200
    assert api.get("/api/v1/sessions").status_code == 200

    response = api.get("/api/v1/sessions")

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response.json()["error"]["code"] == "throttled"
    cache.clear()
