"""Plots: drawn on a worker (matplotlib, Agg), kept as artifacts, served by the API.

The render task is called in this process (it is a plain function under the Celery
decorator); what the web side sends to the broker is captured at Celery's send_task.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery import current_app
from django.utils import timezone

from apps.artifacts.models import Artifact
from apps.core.queues import RENDER_PLOT_TASK
from apps.plots.models import Plot
from apps.plots.selectors import CurveData, DurationsPlotData, RDPlotData
from apps.rd.services import rd_sweep_record
from apps.runs.models import Run
from apps.runs.services import run_claim, run_complete
from apps.sessions.services import session_create
from workers.plot_rendering import render_durations, render_rd
from workers.plots import render_plot_task

pytestmark = pytest.mark.django_db

RD = "/api/v1/plots/rd"
DURATIONS = "/api/v1/plots/durations"


@pytest.fixture
def sent_tasks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple, str]]:
    """Tasks sent to the broker by name (what reaches a worker is not these tests' business)."""
    sent: list[tuple[str, tuple, str]] = []
    monkeypatch.setattr(
        current_app,
        "send_task",
        lambda name, args=(), queue=None, **_: sent.append((name, tuple(args), queue)),
    )
    return sent


def sweep(session, nodes: int, points: list[tuple[int, float, float]], knee_level: int | None) -> Run:
    run = Run.objects.create(owner=session.owner, session=session, kind="rd_sweep", queue="cpu")
    rows = [{"level": level, "rate": rate, "distortion": distortion} for level, rate, distortion in points]
    rd_sweep_record(
        run=run, nodes=nodes, points=rows, knee=next((r for r in rows if r["level"] == knee_level), None)
    )
    return run


CURVE = [(1, 0.0, 0.52), (2, 0.31, 0.2), (3, 0.9, 0.08), (6, 1.6, 0.0)]


def test_the_rd_plot_labels_its_axes_and_levels_and_marks_the_knee():
    data = RDPlotData("RD curve of sweep ab", [CurveData("6 nodes", CURVE, (2, 0.31, 0.2))], timezone.now())
    svg = render_rd(data, "svg").decode()
    assert svg.startswith("<?xml") and "<script" not in svg
    for text in (
        "rate R(D) (bits)",
        "distortion D",
        "k=1",
        "k=3",
        "k=6",
        "knee (k=2)",
        "RD curve of sweep ab",
    ):
        assert text in svg, text
    assert render_rd(data, "svg") == render_rd(data, "svg")  # no date, no random ids
    assert render_rd(data, "png").startswith(b"\x89PNG\r\n\x1a\n")


def test_the_durations_plot_has_a_box_per_kind_with_its_count():
    data = DurationsPlotData(
        "Run durations by kind", timezone.now(), {"echo": [0.01, 0.02], "sleep": [1.0, 2.0, 3.5]}
    )
    svg = render_durations(data, "svg").decode()
    assert (
        "echo" in svg and "(n=2)" in svg and "sleep" in svg and "(n=3)" in svg and "duration (seconds)" in svg
    )


def test_a_sweep_asks_for_its_plots_once_it_commits_and_the_api_serves_them(
    api, session, sent_tasks, django_capture_on_commit_callbacks
):
    # given an rd_sweep run completing on a worker (its on_success records the curve)
    run = Run.objects.create(
        owner=session.owner, session=session, kind="rd_sweep", queue="cpu", status="queued"
    )
    claimed = run_claim(run_id=run.pk, hostname="w")
    result = {
        "nodes": 6,
        "points": [{"level": level, "rate": rate, "distortion": d} for level, rate, d in CURVE],
        "knee": {"level": 2, "rate": 0.31, "distortion": 0.2},
    }
    with django_capture_on_commit_callbacks(execute=True):
        assert run_complete(run=claimed, attempt=claimed.attempts, result=result)
    # then the plots are asked of a control worker, after the commit
    assert [task for task in sent_tasks if task[0] == RENDER_PLOT_TASK] == [
        (RENDER_PLOT_TASK, ("rd_run", str(session.pk), str(run.pk)), "control"),
        (RENDER_PLOT_TASK, ("rd_session", str(session.pk), None), "control"),
    ]

    # before the worker drew it: 202, ask again
    waiting = api.get(RD, {"run": str(run.pk)})
    assert waiting.status_code == 202 and waiting["Retry-After"] == "2"
    assert waiting.json() == {"status": "rendering", "retry_after": 2}

    # when the worker draws them
    for args in ((task[1]) for task in sent_tasks if task[0] == RENDER_PLOT_TASK):
        assert render_plot_task(*args) == "drawn"

    # then each is an artifact of the session, served as a picture
    svg = api.get(RD, {"run": str(run.pk)})
    assert svg.status_code == 200 and svg["Content-Type"] == "image/svg+xml"
    assert b"knee (k=2)" in svg.content and "script-src" not in svg["Content-Security-Policy"]
    png = api.get(RD, {"run": str(run.pk), "format": "png"})
    assert png.status_code == 200 and png["Content-Type"] == "image/png" and png.content[:4] == b"\x89PNG"
    assert api.get(RD, {"run": str(run.pk)}, HTTP_IF_NONE_MATCH=svg["ETag"]).status_code == 304
    session_plot = api.get(RD, {"session": str(session.pk)})
    assert session_plot.status_code == 200 and b"sweep" in session_plot.content
    plots = Plot.objects.filter(session=session)
    assert sorted((plot.key.split(":")[0], plot.format) for plot in plots) == [
        ("rd_run", "png"),
        ("rd_run", "svg"),
        ("rd_session", "png"),
        ("rd_session", "svg"),
    ]
    assert {plot.artifact.run_id for plot in plots if plot.subject == "rd_run"} == {run.pk}
    listed = api.get("/api/v1/artifacts", {"run": str(run.pk)}).json()["results"]
    assert sorted(item["name"] for item in listed) == [
        f"rd-curve-{str(run.pk)[:8]}.png",
        f"rd-curve-{str(run.pk)[:8]}.svg",
    ]


def test_a_newer_sweep_makes_the_session_plot_stale_it_is_served_and_redrawn(api, session, sent_tasks):
    sweep(session, 6, CURVE, knee_level=2)
    assert render_plot_task("rd_session", str(session.pk)) == "drawn"
    first = Plot.objects.get(session=session, key="rd_session", format="svg")
    newer = sweep(session, 4, [(1, 0.0, 0.4), (2, 0.5, 0.1), (4, 1.0, 0.0)], knee_level=2)
    newer.rd_curve.__class__.objects.filter(pk=newer.rd_curve.pk).update(
        created_at=timezone.now() + timedelta(seconds=1)
    )

    stale = api.get(RD, {"session": str(session.pk)})
    assert stale.status_code == 200 and stale["ETag"] == f'"{first.artifact.sha256}"'
    assert sent_tasks == [(RENDER_PLOT_TASK, ("rd_session", str(session.pk), None), "control")]
    api.get(RD, {"session": str(session.pk)})
    assert len(sent_tasks) == 1  # asked once, not on every request

    assert render_plot_task("rd_session", str(session.pk)) == "drawn"
    redrawn = api.get(RD, {"session": str(session.pk)})
    assert redrawn["ETag"] != stale["ETag"] and str(newer.pk)[:8].encode() in redrawn.content
    # the picture it replaced is gone with its bytes
    assert not Artifact.objects.filter(pk=first.artifact_id).exists()


def test_durations_are_drawn_per_session_from_its_finished_runs(api, session, sent_tasks):
    assert api.get(DURATIONS, {"session": str(session.pk)}).status_code == 404  # nothing finished yet
    now = timezone.now()
    for kind, seconds in (("sleep", 1.0), ("sleep", 2.0), ("echo", 0.01)):
        Run.objects.create(
            owner=session.owner,
            session=session,
            kind=kind,
            queue="cpu",
            status="succeeded",
            duration_seconds=seconds,
            finished_at=now,
        )
    assert api.get(DURATIONS, {"session": str(session.pk), "format": "png"}).status_code == 202
    assert render_plot_task(*sent_tasks[0][1]) == "drawn"
    svg = api.get(DURATIONS, {"session": str(session.pk)})
    assert svg.status_code == 200 and b"(n=2)" in svg.content and b"echo" in svg.content


def test_plot_requests_are_validated_and_scoped(api, other_api, session, make_user, sent_tasks):
    run = sweep(session, 6, CURVE, knee_level=2)
    assert api.get(RD).status_code == 400
    assert api.get(RD, {"run": str(run.pk), "session": str(session.pk)}).status_code == 400
    bad_format = api.get(RD, {"run": str(run.pk), "format": "gif"})
    assert bad_format.status_code == 400 and list(bad_format.json()["error"]["fields"]) == ["format"]
    assert api.get(DURATIONS).status_code == 400
    for url, query in (
        (RD, {"run": str(run.pk)}),
        (RD, {"session": str(session.pk)}),
        (DURATIONS, {"session": str(session.pk)}),
    ):
        foreign = other_api.get(url, query)
        assert foreign.status_code == 404 and foreign["Content-Type"] == "application/json", url
    empty = session_create(owner=session.owner, name="empty")
    assert api.get(RD, {"session": str(empty.pk)}).status_code == 404
    not_a_sweep = Run.objects.create(owner=session.owner, session=session, kind="sleep", queue="cpu")
    assert api.get(RD, {"run": str(not_a_sweep.pk)}).status_code == 404
    assert sent_tasks == []  # nothing is drawn for a refused request


def test_the_admin_shows_the_plots_on_the_run_and_session_pages(make_user, session, client):
    run = sweep(session, 6, CURVE, knee_level=2)
    Run.objects.filter(pk=run.pk).update(status="succeeded")
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    run_page = client.get(f"/admin/runs/run/{run.pk}/change/").content.decode()
    assert f'src="/api/v1/plots/rd?run={run.pk}&amp;format=svg"' in run_page
    session_page = client.get(f"/admin/compute_sessions/session/{session.pk}/change/").content.decode()
    assert f'src="/api/v1/plots/rd?session={session.pk}&amp;format=svg"' in session_page
    assert f'src="/api/v1/plots/durations?session={session.pk}&amp;format=svg"' in session_page
