from __future__ import annotations

from django.urls import path

from apps.inference.api.views import ModelListApi

urlpatterns = [
    path("models", ModelListApi.as_view(), name="model-list"),
]
