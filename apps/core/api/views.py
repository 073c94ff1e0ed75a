from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularSwaggerView
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api.serializers import ApiIndexOutputSerializer

AUTHENTICATION_HINT = (
    "Send 'Authorization: Token <token>' (config.up prints one) or 'Authorization: Api-Key <key>' "
    "(POST api-keys makes one); everything but this index, /health, /ready and /metrics needs it."
)


class ApiIndexApi(APIView):
    """Where each part of the API is, as absolute URLs.

    Public, like /health: it holds no data, only the URLs that the README shows, so that
    the address config.up prints leads somewhere without a token. Which URLs it lists is
    the URLconf's business (config.urls passes their names), not this app's.
    """

    permission_classes = [AllowAny]
    version = ""
    endpoints: dict[str, str] = {}  # label -> URL name
    documentation: dict[str, str] = {}  # label -> URL name

    @extend_schema(
        operation_id="api_index",
        description="Where each part of the API is, as absolute URLs. Needs no authentication.",
        responses={200: ApiIndexOutputSerializer},
    )
    def get(self, request: Request) -> Response:
        def absolute(names: dict[str, str]) -> dict[str, str]:
            return {label: request.build_absolute_uri(reverse(name)) for label, name in names.items()}

        return Response(
            {
                "name": settings.SPECTACULAR_SETTINGS["TITLE"],
                "version": self.version,
                "authentication": AUTHENTICATION_HINT,
                "endpoints": absolute(self.endpoints),
                "documentation": absolute(self.documentation),
            }
        )


class SwaggerUiApi(SpectacularSwaggerView):
    """The Swagger UI page, whose refusals (401 before a login, 405) are JSON like the API's:
    its HTML renderer would answer them with a bare text page."""

    # OPTIONS would render DRF's metadata through the HTML template renderer: a 500.
    http_method_names = ["get", "head"]

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response
