from __future__ import annotations

from django.urls import path
from rest_framework_simplejwt.views import TokenBlacklistView, TokenObtainPairView, TokenRefreshView

from apps.accounts.api.views import ApiKeyDetailApi, ApiKeyListCreateApi, ApiKeyRevokeApi, ApiKeyRotateApi

urlpatterns = [
    path("api-keys", ApiKeyListCreateApi.as_view(), name="api-key-list"),
    path("api-keys/<int:key_id>", ApiKeyDetailApi.as_view(), name="api-key-detail"),
    path("api-keys/<int:key_id>/revoke", ApiKeyRevokeApi.as_view(), name="api-key-revoke"),
    path("api-keys/<int:key_id>/rotate", ApiKeyRotateApi.as_view(), name="api-key-rotate"),
    # JWT: a pair for a username and password; refresh (rotating); blacklist (log out)
    path("auth/token", TokenObtainPairView.as_view(), name="auth-token"),
    path("auth/token/refresh", TokenRefreshView.as_view(), name="auth-token-refresh"),
    path("auth/token/blacklist", TokenBlacklistView.as_view(), name="auth-token-blacklist"),
]
