from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import selectors, services
from apps.accounts.api.serializers import (
    ApiKeyCreatedOutputSerializer,
    ApiKeyCreateInputSerializer,
    ApiKeyOutputSerializer,
    ApiKeyRevokedOutputSerializer,
    ApiKeyRevokeQuerySerializer,
    ApiKeyRotateInputSerializer,
)
from apps.accounts.models import ApiKey
from apps.core.exceptions import NotFound

CASCADE_PARAMETER = OpenApiParameter(
    "cascade", bool, description="Also revoke every key made with this one (a key rotating itself), on down."
)

REVOKE_SCHEMA: dict[str, Any] = {
    "request": None,
    "parameters": [CASCADE_PARAMETER],
    "responses": {200: ApiKeyRevokedOutputSerializer},
}


def _via_key(request: Request) -> ApiKey | None:
    """The API key the request authenticated with, if it did."""
    return request.auth if isinstance(request.auth, ApiKey) else None


def _key_or_404(request: Request, key_id: int) -> ApiKey:
    api_key = selectors.api_key_get_for_user(user=request.user, key_id=key_id)
    if api_key is None:
        raise NotFound("API key not found.")
    return api_key


def _created(api_key: ApiKey, key: str, code: int = status.HTTP_201_CREATED) -> Response:
    api_key.key = key
    return Response(ApiKeyCreatedOutputSerializer(api_key).data, status=code)


class ApiKeyListCreateApi(ListAPIView):
    serializer_class = ApiKeyOutputSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.api_key_list_for_user(user=self.request.user)

    @extend_schema(
        request=ApiKeyCreateInputSerializer,
        responses={201: ApiKeyCreatedOutputSerializer},
        description=(
            "Needs a password-backed login (an API token, a session or a JWT): an API key "
            "cannot create keys (403 `api_key_not_allowed`). At most API_KEYS_PER_USER active "
            "keys per user (409 `api_key_limit`)."
        ),
    )
    def post(self, request: Request) -> Response:
        data = ApiKeyCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        api_key, key = services.api_key_create(
            user=request.user, via_key=_via_key(request), **data.validated_data
        )
        return _created(api_key, key)


class ApiKeyRotateApi(APIView):
    @extend_schema(
        request=ApiKeyRotateInputSerializer,
        responses={201: ApiKeyCreatedOutputSerializer},
        description=(
            "A new key (shown once) replacing this one, which keeps working for `overlap_seconds`. "
            "With an API key, only that key may be rotated, and its successor expires no later."
        ),
    )
    def post(self, request: Request, key_id: int) -> Response:
        api_key = _key_or_404(request, key_id)
        data = ApiKeyRotateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        new, key = services.api_key_rotate(
            user=request.user, api_key=api_key, via_key=_via_key(request), **data.validated_data
        )
        return _created(new, key)


class ApiKeyRevokeApi(APIView):
    @extend_schema(**REVOKE_SCHEMA)
    def post(self, request: Request, key_id: int) -> Response:
        return _revoke(request, key_id)


class ApiKeyDetailApi(APIView):
    @extend_schema(responses={200: ApiKeyOutputSerializer})
    def get(self, request: Request, key_id: int) -> Response:
        return Response(ApiKeyOutputSerializer(_key_or_404(request, key_id)).data)

    @extend_schema(**REVOKE_SCHEMA)
    def delete(self, request: Request, key_id: int) -> Response:
        """Revoke the key (the record stays, for the audit trail)."""
        return _revoke(request, key_id)


def _revoke(request: Request, key_id: int) -> Response:
    query = ApiKeyRevokeQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    api_key, *cascaded = services.api_key_revoke(
        api_key=_key_or_404(request, key_id), cascade=query.validated_data["cascade"]
    )
    body: dict[str, Any] = {**ApiKeyOutputSerializer(api_key).data, "cascaded": [key.pk for key in cascaded]}
    return Response(body)
