"""Saved runs: create, list by tag or name, update, delete, and run with overrides through
run_submit (validation and governance apply); owner-scoped."""

from __future__ import annotations

import uuid

import pytest
from django.contrib import admin

from apps.bookmarks.models import SavedRun
from apps.bookmarks.services import merge_patch
from apps.runs.models import Run

pytestmark = pytest.mark.django_db


def create(api, **fields):
    return api.post(
        "/api/v1/saved-runs", {"kind": "sleep", "payload": {"seconds": 1}, **fields}, format="json"
    )


def test_create_list_by_tag_or_name_update_and_delete(api, session):
    # given
    nightly = create(api, name="Nightly sleep", tags=["nightly", "demo"], session=str(session.pk))
    assert nightly.status_code == 201, nightly.json()
    saved = nightly.json()
    assert (saved["tags"], saved["usage_count"], saved["last_run"], saved["session"]) == (
        ["demo", "nightly"],
        0,
        None,
        str(session.pk),
    )
    assert create(api, name="weekly echo", kind="echo", tags=["demo"]).status_code == 201

    # when / then: filters
    def names(query: str) -> list[str]:
        return [row["name"] for row in api.get(f"/api/v1/saved-runs{query}").json()["results"]]

    assert names("") == ["Nightly sleep", "weekly echo"]
    assert names("?tag=nightly") == ["Nightly sleep"] and names("?tag=demo") == [
        "Nightly sleep",
        "weekly echo",
    ]
    assert names("?q=WEEK") == ["weekly echo"] and names("?tag=demo&q=night") == ["Nightly sleep"]

    url = f"/api/v1/saved-runs/{saved['id']}"
    changed = api.patch(url, {"tags": ["nightly"], "session": None, "payload": {"seconds": 2}}, format="json")
    assert changed.status_code == 200
    assert (changed.json()["tags"], changed.json()["session"], changed.json()["payload"]) == (
        ["nightly"],
        None,
        {"seconds": 2},
    )
    assert api.get(url).json()["name"] == "Nightly sleep"
    assert api.delete(url).status_code == 204 and api.get(url).status_code == 404


def test_bad_input_is_a_clear_4xx(api, session):
    assert create(api, name="one").status_code == 201
    duplicate = create(api, name="one")
    assert duplicate.status_code == 409 and duplicate.json()["error"]["fields"] == {
        "name": ["Already in use."]
    }
    for fields, field in (
        ({"name": "x", "kind": "nope"}, "kind"),
        ({"name": "x", "tags": ["has space"]}, "tags"),
        ({"name": "x", "payload": [1]}, "payload"),
        ({"name": "x", "session": str(uuid.uuid4())}, "session"),
        ({"name": "x", "priority": 10}, "priority"),
        ({"name": ""}, "name"),
    ):
        response = create(api, **fields)
        assert response.status_code == 400 and field in response.json()["error"]["fields"], fields
    saved = SavedRun.objects.get(name="one")
    assert api.patch(f"/api/v1/saved-runs/{saved.pk}", {"kind": "nope"}, format="json").status_code == 400


def test_run_merges_overrides_submits_and_counts(api, session, user):
    saved = create(api, name="sleepy", payload={"seconds": 1}, session=str(session.pk)).json()
    url = f"/api/v1/saved-runs/{saved['id']}/run"

    # when
    response = api.post(url, {"payload": {"seconds": 2}}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    # then: a run like any other, with the merged payload
    assert response.status_code == 201, response.json()
    run = Run.objects.get(pk=response.json()["id"])
    assert (run.kind, run.payload["seconds"], run.status, run.session_id) == (
        "sleep",
        2.0,
        "queued",
        session.pk,
    )
    assert hasattr(run, "trace")
    after = api.get(f"/api/v1/saved-runs/{saved['id']}").json()
    assert after["usage_count"] == 1 and after["last_run"]["id"] == str(run.pk)
    assert after["last_run"]["status"] == "queued" and after["last_run_at"] is not None

    # a replayed key is the same run, not another use
    replay = api.post(url, {"payload": {"seconds": 2}}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert replay.status_code == 200 and replay.json()["id"] == str(run.pk)
    # the kind's validation applies to the merged payload; nothing is counted
    invalid = api.post(url, {"payload": {"seconds": "2"}}, format="json")
    assert invalid.status_code == 400 and "seconds" in str(invalid.json()["error"]["fields"])
    assert api.get(f"/api/v1/saved-runs/{saved['id']}").json()["usage_count"] == 1


def test_run_needs_a_session(api, session):
    saved = create(api, name="homeless").json()
    url = f"/api/v1/saved-runs/{saved['id']}/run"

    refused = api.post(url, {}, format="json")
    assert refused.status_code == 400 and "session" in refused.json()["error"]["fields"]
    assert api.post(url, {"session": str(session.pk)}, format="json").status_code == 201


def test_saved_runs_are_their_owners_only(api, other_api, session):
    saved = create(api, name="mine", session=str(session.pk)).json()
    url = f"/api/v1/saved-runs/{saved['id']}"

    assert other_api.get("/api/v1/saved-runs").json()["results"] == []
    assert other_api.get(url).status_code == 404
    assert other_api.patch(url, {"name": "theirs"}, format="json").status_code == 404
    assert other_api.delete(url).status_code == 404
    assert other_api.post(f"{url}/run", {}, format="json").status_code == 404
    # and their own saved run cannot send a run into this session
    theirs = create(other_api, name="theirs").json()
    sneaky = other_api.post(
        f"/api/v1/saved-runs/{theirs['id']}/run", {"session": str(session.pk)}, format="json"
    )
    assert sneaky.status_code == 400 and Run.objects.count() == 0


def test_merge_patch_follows_rfc_7386():
    saved = {"a": 1, "graph": {"n": 3, "edges": [[0, 1]]}, "drop": True}
    patch = {"graph": {"edges": [[1, 2]]}, "drop": None, "b": [1]}
    assert merge_patch(saved, patch) == {"a": 1, "graph": {"n": 3, "edges": [[1, 2]]}, "b": [1]}


def test_admin_lists_saved_runs(client, make_user, user):
    SavedRun.objects.create(owner=user, name="in the admin", kind="echo")
    assert SavedRun in admin.site._registry
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    page = client.get("/admin/bookmarks/savedrun/")
    assert page.status_code == 200 and "in the admin" in page.content.decode()
