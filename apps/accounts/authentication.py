from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token
from rest_framework.request import Request

from apps.accounts import authcache
from apps.accounts.keys import hash_key
from apps.accounts.services import api_key_authenticate

KEYWORD = "Api-Key"


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's `Authorization: Token <key>`, its lookup cached (apps.accounts.authcache)."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        digest = hash_key(key)
        generation, entry = authcache.lookup("token", digest)
        if entry is not None:
            user = authcache.instance_of(get_user_model(), entry["user"])
            token = authcache.instance_of(Token, {**entry["token"], "key": key})
            token.user = user
            if not user.is_active:  # deactivated by a bulk update, which sends no signal
                raise exceptions.AuthenticationFailed("User inactive or deleted.")
            return user, token
        user, token = super().authenticate_credentials(key)
        authcache.store(
            "token",
            digest,
            generation,
            # the token itself stays out of the cache: the request brings it
            {"user": authcache.row_values(user), "token": authcache.row_values(token, without=("key",))},
        )
        return user, token


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Api-Key <key>`."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid Api-Key header: expected 'Api-Key <key>'.")
        try:
            key = parts[1].decode()
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid Api-Key header.") from exc
        api_key = api_key_authenticate(key=key)
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        return api_key.user, api_key

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "apps.accounts.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`",
        }
