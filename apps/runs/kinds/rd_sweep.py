"""`rd_sweep`: rate-distortion points of one graph at several coarsening levels.

Each sweep is its own curve (its run and its graph), with its own knee; on success
the points are recorded for /api/v1/rd/curve and /api/v1/rd/knee.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from rest_framework import serializers

from apps.core.queues import RENDER_PLOT_TASK, Queue
from apps.rd.services import rd_sweep_record
from apps.runs.kinds import RunKind, register
from apps.runs.kinds._graph_payloads import SolverOptionsSerializer, graph_queue, validate_graph
from apps.runs.kinds._strict import StrictIntegerField
from apps.runs.models import Run


class RDSweepPayloadSerializer(SolverOptionsSerializer):
    graph = serializers.JSONField()
    levels = serializers.ListField(child=StrictIntegerField(min_value=1), allow_empty=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        graph = validate_graph(attrs["graph"], "graph", context=self.context)
        levels = attrs["levels"]
        limit = settings.RD_MAX_LEVELS
        if len(levels) > limit:
            raise serializers.ValidationError(
                {"levels": [f"{len(levels)} levels; the limit is {limit} (RD_MAX_LEVELS)."]}
            )
        if graph["n"] is not None and any(level > graph["n"] for level in levels):
            raise serializers.ValidationError(
                {"levels": [f"levels must lie in 1..{graph['n']} (the graph's nodes)."]}
            )
        return {**attrs, "graph": graph, "levels": sorted(set(levels))}


logger = logging.getLogger(__name__)


def request_plots(run_id: str, session_id: str) -> None:
    """The sweep's RD plot and its session's, drawn on a control worker (matplotlib stays there)."""
    try:
        for subject, plotted_run in (("rd_run", run_id), ("rd_session", None)):
            current_app.send_task(
                RENDER_PLOT_TASK, args=(subject, session_id, plotted_run), queue=Queue.CONTROL.value
            )
    except Exception:
        # The plot API asks again when a picture is missing: a lost request only delays it.
        logger.warning("could not ask for the sweep's plots", exc_info=True, extra={"run_id": run_id})


def record_points(run: Run, result: Any) -> None:
    rd_sweep_record(run=run, nodes=result["nodes"], points=result["points"], knee=result["knee"])
    # after the commit: the worker that draws must find the curve
    transaction.on_commit(partial(request_plots, str(run.pk), str(run.session_id)), robust=True)


register(
    RunKind(
        name="rd_sweep",
        payload_serializer=RDSweepPayloadSerializer,
        queue=Queue.CPU,
        select_queue=graph_queue,
        on_success=record_points,
        time_limit_seconds=3600,
        description="Rate-distortion curve of `graph` at coarsening `levels`, with its knee.",
    )
)
