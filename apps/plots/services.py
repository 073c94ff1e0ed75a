"""Writes for plots: ask a worker to draw one (the web process loads no plotting library),
and keep what it drew as the session's artifact, replacing the picture it supersedes."""

from __future__ import annotations

import logging
from datetime import datetime
from uuid import UUID

from celery import current_app
from django.core.cache import cache
from django.db import IntegrityError, transaction

from apps.artifacts.models import Artifact
from apps.artifacts.services import artifact_delete, artifact_put
from apps.core.queues import RENDER_PLOT_TASK, Queue
from apps.plots.models import CONTENT_TYPES, Plot, PlotFormat, PlotSubject, plot_key
from apps.runs.models import Run
from apps.sessions.models import Session

logger = logging.getLogger(__name__)

# A render asked for is not asked again for this long (a worker draws one in about a second;
# after this, a request that still finds no picture asks again).
RENDER_REQUEST_SECONDS = 30


def plot_request_render(*, subject: str, session_id: UUID | str, run_id: UUID | str | None = None) -> bool:
    """Send the render task (control queue) unless it was sent lately; True if it was sent now."""
    if not cache.add(f"plots:render:{session_id}:{plot_key(subject, run_id)}", 1, RENDER_REQUEST_SECONDS):
        return False
    try:
        current_app.send_task(
            RENDER_PLOT_TASK,
            args=(str(subject), str(session_id), None if run_id is None else str(run_id)),
            queue=Queue.CONTROL.value,
        )
    except Exception:
        logger.warning("could not ask for a plot", exc_info=True, extra={"session_id": str(session_id)})
        cache.delete(f"plots:render:{session_id}:{plot_key(subject, run_id)}")
        return False
    return True


def _file_name(subject: str, run: Run | None, fmt: str) -> str:
    if subject == PlotSubject.RD_RUN and run is not None:
        return f"rd-curve-{str(run.pk)[:8]}.{fmt}"
    return f"{'rd-curves' if subject == PlotSubject.RD_SESSION else 'durations'}.{fmt}"


def plot_store(
    *, session: Session, run: Run | None, subject: str, images: dict[str, bytes], data_as_of: datetime
) -> list[Plot]:
    """Store each format's picture as an artifact of the session (and run) and point the plot at
    it; the artifact it replaces is deleted. A picture of older data than the stored one is dropped."""
    key = plot_key(subject, None if run is None else run.pk)
    plots = []
    for fmt, image in images.items():
        artifact = artifact_put(
            owner=session.owner,
            session=session,
            run=run,
            name=_file_name(subject, run, fmt),
            data=image,
            content_type=CONTENT_TYPES[PlotFormat(fmt)],
        )
        try:
            plots.append(_point_at(session, run, subject, key, fmt, artifact, data_as_of))
        except IntegrityError:  # another worker stored the first picture meanwhile
            plots.append(_point_at(session, run, subject, key, fmt, artifact, data_as_of))
    return plots


def _point_at(
    session: Session,
    run: Run | None,
    subject: str,
    key: str,
    fmt: str,
    artifact: Artifact,
    data_as_of: datetime,
) -> Plot:
    with transaction.atomic():
        plot = Plot.objects.select_for_update().filter(session=session, key=key, format=fmt).first()
        if plot is None:
            return Plot.objects.create(
                session=session,
                run=run,
                subject=subject,
                key=key,
                format=fmt,
                artifact=artifact,
                data_as_of=data_as_of,
            )
        if plot.data_as_of > data_as_of:
            artifact_delete(artifact=artifact)  # a slower worker drew older data
            return plot
        replaced = plot.artifact
        plot.artifact, plot.data_as_of = artifact, data_as_of
        plot.save(update_fields=["artifact", "data_as_of", "rendered_at"])
        artifact_delete(artifact=replaced)
        return plot
