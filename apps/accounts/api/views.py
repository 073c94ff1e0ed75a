from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import selectors, services
from apps.accounts.api.serializers import (
    ApiKeyCreatedOutputSerializer,
    ApiKeyCreateInputSerializer,
    ApiKeyOutputSerializer,
)


class ApiKeyListCreateApi(ListAPIView):
    serializer_class = ApiKeyOutputSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.api_key_list_for_user(user=self.request.user)

    @extend_schema(request=ApiKeyCreateInputSerializer, responses={201: ApiKeyCreatedOutputSerializer})
    def post(self, request: Request) -> Response:
        data = ApiKeyCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        api_key, key = services.api_key_create(user=request.user, **data.validated_data)
        api_key.key = key
        return Response(ApiKeyCreatedOutputSerializer(api_key).data, status=status.HTTP_201_CREATED)


class ApiKeyRevokeApi(APIView):
    @extend_schema(request=None, responses={200: ApiKeyOutputSerializer})
    def post(self, request: Request, key_id: int) -> Response:
        api_key = selectors.api_key_get_for_user(user=request.user, key_id=key_id)
        if api_key is None:
            raise NotFound("API key not found.")
        api_key = services.api_key_revoke(api_key=api_key)
        return Response(ApiKeyOutputSerializer(api_key).data)


class ApiKeyDetailApi(APIView):
    @extend_schema(request=None, responses={200: ApiKeyOutputSerializer})
    def delete(self, request: Request, key_id: int) -> Response:
        """Revoke the key (the record stays, for the audit trail)."""
        return ApiKeyRevokeApi().post(request, key_id)
