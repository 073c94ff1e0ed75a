from __future__ import annotations

from django.urls import path

from apps.rd.api.views import RDCurveApi, RDKneeApi

urlpatterns = [
    path("rd/curve", RDCurveApi.as_view(), name="rd-curve"),
    path("rd/knee", RDKneeApi.as_view(), name="rd-knee"),
]
