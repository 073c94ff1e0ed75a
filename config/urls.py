from __future__ import annotations

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from django.urls.resolvers import RoutePattern
from drf_spectacular.views import SpectacularJSONAPIView

from apps.core import health
from apps.core.api.views import ApiIndexApi, SwaggerUiApi


class SlashOptionalRoutePattern(RoutePattern):
    """An endpoint route that also matches with its trailing slash added or removed.

    Both forms are served as they are, for every method: a redirect to the canonical
    form would turn a POST into a GET in most clients and lose its body. reverse()
    keeps giving the route as written.
    """

    def match(self, path: str) -> tuple[str, tuple[object, ...], dict[str, object]] | None:
        other = path[:-1] if path.endswith("/") else f"{path}/"
        return super().match(path) or super().match(other)


def slash_optional(patterns: list[URLPattern | URLResolver]) -> list[URLPattern | URLResolver]:
    """`patterns`, each endpoint (in includes too) answering with or without its trailing slash."""
    adjusted: list[URLPattern | URLResolver] = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            adjusted.append(
                URLResolver(
                    pattern.pattern,
                    slash_optional(pattern.url_patterns),
                    pattern.default_kwargs,
                    pattern.app_name,
                    pattern.namespace,
                )
            )
        elif isinstance(pattern.pattern, RoutePattern):
            route = str(pattern.pattern)
            optional = SlashOptionalRoutePattern(route, name=pattern.pattern.name, is_endpoint=True)
            adjusted.append(URLPattern(optional, pattern.callback, pattern.default_args, pattern.name))
        else:
            raise TypeError(f"{pattern.pattern.describe()}: only path() routes can be made slash-optional")
    return adjusted


api_v1 = [
    path("", include("apps.sessions.api.urls")),
    path("", include("apps.runs.api.urls")),
    path("", include("apps.traces.api.urls")),
    path("", include("apps.accounts.api.urls")),
    path("", include("apps.rd.api.urls")),
    path("", include("apps.governance.api.urls")),
    path("", include("apps.artifacts.api.urls")),
    path("", include("apps.inference.api.urls")),
    path("", include("apps.conversations.api.urls")),
    path("", include("apps.reports.api.urls")),
    path("", include("apps.bookmarks.api.urls")),
    path("", include("apps.plots.api.urls")),
    path("", include("apps.llm.api.urls")),
    path("schema/", SpectacularJSONAPIView.as_view(), name="schema"),
    path("docs/", SwaggerUiApi.as_view(url_name="schema"), name="docs"),
]

api_index = ApiIndexApi.as_view(
    version="v1",
    endpoints={
        "sessions": "session-list",
        "runs": "run-list",
        "runs_batch": "run-batch",
        "traces": "trace-list",
        "api_keys": "api-key-list",
        "auth_token": "auth-token",
        "auth_token_refresh": "auth-token-refresh",
        "auth_token_blacklist": "auth-token-blacklist",
        "rd_curve": "rd-curve",
        "rd_knee": "rd-knee",
        "artifacts": "artifact-list",
        "models": "model-list",
        "artifacts_export": "export",
        "runs_compare": "run-compare",
        "saved_runs": "saved-run-list",
        "plots_rd": "plot-rd",
        "plots_durations": "plot-durations",
        "llm_providers": "llm-provider-list",
        "llm_tools": "llm-tool-list",
        "governance_policies": "policy-list",
        "governance_queue": "governance-queue",
        "governance_scan": "governance-scan",
        "governance_stats": "governance-stats",
        "governance_audit": "governance-audit",
    },
    documentation={"swagger_ui": "docs", "openapi_schema": "schema"},
)

urlpatterns = [
    *slash_optional(
        [
            path("health", health.health, name="health"),
            path("ready", health.ready, name="ready"),
            path("metrics", health.metrics, name="metrics"),
            # outside the include below, which "/api/v1" (no slash) would not enter
            path("api/v1/", api_index, name="api-index"),
            path("api/v1/", include(api_v1)),
            path("", include("apps.dashboard.urls")),
        ]
    ),
    path("admin/", admin.site.urls),
]

handler404 = "apps.core.handlers.not_found"
handler500 = "apps.core.handlers.server_error"
handler400 = "apps.core.handlers.bad_request"
handler403 = "apps.core.handlers.permission_denied"
