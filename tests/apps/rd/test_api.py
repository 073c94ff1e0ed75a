from __future__ import annotations

import pytest

from apps.rd.models import RDKnee, RDPoint

pytestmark = pytest.mark.django_db


def test_curve_and_knee(api, session):
    for level, rate, distortion in ((2, 0.1, 0.9), (8, 1.2, 0.2), (4, 0.9, 0.3)):
        RDPoint.objects.create(session=session, level=level, rate=rate, distortion=distortion)
    RDKnee.objects.create(session=session, level=4, rate=0.9, distortion=0.3, points=3)

    curve = api.get("/api/v1/rd/curve", {"session": str(session.pk)}).json()
    assert [p["level"] for p in curve["points"]] == [2, 4, 8]
    assert curve["knee"]["level"] == 4
    knee = api.get("/api/v1/rd/knee", {"session": str(session.pk)}).json()
    assert (knee["level"], knee["rate"], knee["distortion"]) == (4, 0.9, 0.3)


def test_no_knee_yet_is_404_with_a_reason(api, session):
    response = api.get("/api/v1/rd/knee", {"session": str(session.pk)})
    assert response.status_code == 404 and "at least 3 points" in response.json()["error"]["message"]
    assert api.get("/api/v1/rd/curve", {"session": str(session.pk)}).json()["points"] == []


def test_session_is_required_and_scoped(api, other_api, session):
    assert api.get("/api/v1/rd/curve").status_code == 400
    assert api.get("/api/v1/rd/knee", {"session": "nope"}).status_code == 400
    assert other_api.get("/api/v1/rd/curve", {"session": str(session.pk)}).status_code == 404
