"""config.urls plus `POST /bench/bare`: a plain DRF endpoint doing one INSERT, behind the same
middleware, authentication and throttling as the API: the baseline the submission path is
measured against."""

from __future__ import annotations

import json

from django.db import connection
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import urlpatterns as platform_urlpatterns


class BareInsertApi(APIView):
    def post(self, request: Request) -> Response:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO bench_bare (body) VALUES (%s) RETURNING id", [json.dumps(request.data)]
            )
            (row_id,) = cursor.fetchone()
        return Response({"id": row_id}, status=201)


urlpatterns = [path("bench/bare", BareInsertApi.as_view()), *platform_urlpatterns]
