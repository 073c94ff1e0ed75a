from __future__ import annotations

from django.urls import path

from apps.llm.api.views import LlmProviderListApi, LlmToolListApi, SessionLlmUsageApi

urlpatterns = [
    path("llm/providers", LlmProviderListApi.as_view(), name="llm-provider-list"),
    path("llm/tools", LlmToolListApi.as_view(), name="llm-tool-list"),
    path("sessions/<uuid:session_id>/llm-usage", SessionLlmUsageApi.as_view(), name="session-llm-usage"),
]
