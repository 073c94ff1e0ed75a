"""Artifacts over HTTP.

Upload: `POST /api/v1/artifacts?session=<id>&name=<name>` with the file as the raw request
body (`curl --data-binary @file -H 'Content-Type: ...'`), streamed to storage, up to
ARTIFACT_MAX_BYTES. Download: `GET /api/v1/artifacts/{id}/download`, streamed back.
"""

from __future__ import annotations

import io
import logging
from typing import Any
from uuid import UUID

from django.http import FileResponse, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.artifacts import selectors, services
from apps.artifacts.api.serializers import (
    ArtifactListFilterSerializer,
    ArtifactOutputSerializer,
    ArtifactUploadInputSerializer,
)
from apps.artifacts.models import Artifact
from apps.sessions.selectors import session_get_for_user

logger = logging.getLogger(__name__)

# Media types whose body is an envelope around the file, not the file: refused, so that
# an envelope is never stored as if it were the data.
ENVELOPE_CONTENT_TYPES = ("multipart/",)
# What curl sends with --data-binary when no Content-Type is given: not the file's type.
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


class LengthRequired(exceptions.APIException):
    status_code = status.HTTP_411_LENGTH_REQUIRED
    default_detail = "Send the upload with a Content-Length; chunked bodies are not accepted."
    default_code = "length_required"


class IncompleteBody(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "The body ended before its Content-Length; nothing was stored."
    default_code = "incomplete_body"


class FirstRendererNegotiation(BaseContentNegotiation):
    """A download answers with the artifact's own type whatever Accept says; errors in JSON."""

    def select_parser(self, request: Request, parsers: list[Any]) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(
        self, request: Request, renderers: list[Any], format_suffix: str | None = None
    ) -> Any:
        return renderers[0], renderers[0].media_type


def _artifact_or_404(request: Request, artifact_id: UUID) -> Artifact:
    artifact = selectors.artifact_get_for_user(user=request.user, artifact_id=artifact_id)
    if artifact is None:
        raise exceptions.NotFound("Artifact not found.")
    return artifact


def _upload_content_type(request: Request) -> str:
    content_type = request.META.get("CONTENT_TYPE", "").strip()
    if content_type.lower().startswith(ENVELOPE_CONTENT_TYPES):
        raise exceptions.UnsupportedMediaType(
            content_type,
            detail="Send the file itself as the request body with its own Content-Type, not a form.",
        )
    if not content_type or content_type.lower().startswith(FORM_CONTENT_TYPE):
        return services.DEFAULT_CONTENT_TYPE
    return content_type


class ArtifactListUploadApi(ListAPIView):
    serializer_class = ArtifactOutputSerializer
    # apps.core.middleware lets an upload's body reach this size instead of MAX_REQUEST_BODY_BYTES.
    request_body_limit_setting = "ARTIFACT_MAX_BYTES"

    @extend_schema(parameters=[OpenApiParameter("session", UUID), OpenApiParameter("run", UUID)])
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):  # type: ignore[no-untyped-def]
        filters = ArtifactListFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return selectors.artifact_list_for_user(
            user=self.request.user,
            session_id=filters.validated_data.get("session"),
            run_id=filters.validated_data.get("run"),
        )

    @extend_schema(
        parameters=[
            OpenApiParameter("session", UUID, required=True, description="Session to store the artifact in."),
            OpenApiParameter("name", str, required=True, description="The artifact's name (a file name)."),
        ],
        request={"application/octet-stream": OpenApiTypes.BINARY},
        responses={201: ArtifactOutputSerializer},
        description=(
            "The request body is the file itself, streamed to storage; its Content-Type is kept "
            "(`application/octet-stream` when absent). Up to ARTIFACT_MAX_BYTES (413 beyond)."
        ),
    )
    def post(self, request: Request) -> Response:
        if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            raise LengthRequired()
        params = ArtifactUploadInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        content_type = _upload_content_type(request)
        session = session_get_for_user(user=request.user, session_id=params.validated_data["session"])
        if session is None:
            raise serializers.ValidationError({"session": ["Session not found."]})

        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        body = request.stream if declared else io.BytesIO(b"")
        artifact = services.artifact_put(
            owner=request.user,
            session=session,
            name=params.validated_data["name"],
            data=body,
            content_type=content_type,
        )
        if artifact.size != declared:
            services.artifact_delete(artifact=artifact)
            raise IncompleteBody()
        return Response(ArtifactOutputSerializer(artifact).data, status=status.HTTP_201_CREATED)


class ArtifactDetailApi(APIView):
    @extend_schema(responses={200: ArtifactOutputSerializer})
    def get(self, request: Request, artifact_id: UUID) -> Response:
        return Response(ArtifactOutputSerializer(_artifact_or_404(request, artifact_id)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, artifact_id: UUID) -> Response:
        services.artifact_delete(artifact=_artifact_or_404(request, artifact_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ArtifactDownloadApi(APIView):
    content_negotiation_class = FirstRendererNegotiation

    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="The bytes, with the artifact's Content-Type; ETag is the quoted SHA-256.",
            ),
            304: OpenApiResponse(description="If-None-Match named the artifact's ETag."),
        }
    )
    def get(self, request: Request, artifact_id: UUID) -> HttpResponse:
        artifact = _artifact_or_404(request, artifact_id)
        etag = f'"{artifact.sha256}"'
        if etag in {tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")}:
            not_modified = HttpResponse(status=status.HTTP_304_NOT_MODIFIED)
            not_modified["ETag"] = etag
            return not_modified
        try:
            stored = services.artifact_open(artifact=artifact)
        except FileNotFoundError:
            logger.error("artifact %s has no bytes at %s", artifact.pk, artifact.storage_key)
            raise exceptions.NotFound("The artifact's data is missing from storage.") from None
        response = FileResponse(
            stored,
            as_attachment=True,
            filename=services.safe_filename(artifact.name),
            content_type=artifact.content_type,
        )
        response["Content-Length"] = str(artifact.size)
        response["ETag"] = etag
        response["Cache-Control"] = "private"
        return response
