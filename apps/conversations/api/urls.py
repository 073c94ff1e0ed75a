from __future__ import annotations

from django.urls import path

from apps.conversations.api.views import SessionConversationApi

urlpatterns = [
    path(
        "sessions/<uuid:session_id>/conversation",
        SessionConversationApi.as_view(),
        name="session-conversation",
    ),
]
