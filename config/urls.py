from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from apps.core import health

api_v1 = [
    path("", include("apps.sessions.api.urls")),
    path("", include("apps.runs.api.urls")),
    path("", include("apps.traces.api.urls")),
    path("", include("apps.accounts.api.urls")),
    path("", include("apps.rd.api.urls")),
    path("", include("apps.artifacts.api.urls")),
    path("schema/", SpectacularJSONAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]

urlpatterns = [
    path("health", health.health, name="health"),
    path("ready", health.ready, name="ready"),
    path("metrics", health.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
]

handler404 = "apps.core.handlers.not_found"
handler500 = "apps.core.handlers.server_error"
handler400 = "apps.core.handlers.bad_request"
handler403 = "apps.core.handlers.permission_denied"
