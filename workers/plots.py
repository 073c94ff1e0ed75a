"""Control-queue task: draw a plot and keep it as an artifact (apps.plots)."""

from __future__ import annotations

from celery import shared_task

from apps.core.queues import RENDER_PLOT_TASK
from apps.plots.models import PlotFormat, PlotSubject
from apps.plots.selectors import DurationsPlotData, plot_data
from apps.plots.services import plot_store
from apps.runs.models import Run
from apps.sessions.models import Session


@shared_task(name=RENDER_PLOT_TASK, acks_late=True, ignore_result=True, soft_time_limit=120, time_limit=150)
def render_plot_task(subject: str, session_id: str, run_id: str | None = None) -> str:
    from workers.plot_rendering import render_durations, render_rd  # matplotlib: loaded on first use

    data = plot_data(subject=PlotSubject(subject), session_id=session_id, run_id=run_id)
    session = Session.objects.select_related("owner").filter(pk=session_id).first()
    if data is None or session is None:
        return "nothing to draw"
    render = render_durations if isinstance(data, DurationsPlotData) else render_rd
    images = {fmt.value: render(data, fmt.value) for fmt in PlotFormat}  # type: ignore[arg-type]
    run = Run.objects.filter(pk=run_id).first() if run_id else None
    plot_store(session=session, run=run, subject=subject, images=images, data_as_of=data.as_of)
    return "drawn"
