"""Policies: drafts, approval by someone other than the author, immutable approved versions,
rollback by admins, sessions bound by id or preset name."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEntry
from apps.policies.models import Policy, PolicyVersion
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

POLICIES = "/api/v1/governance/policies"


def test_a_policy_is_drafted_approved_by_another_reviewer_and_then_governs(
    reviewer_api, second_reviewer, api, reviewer
):
    created = reviewer_api.post(
        POLICIES, {"name": "team", "base": "strict", "settings": {"block_severity": 9}}, format="json"
    )
    assert created.status_code == 201
    policy = created.json()
    assert policy["active_version"] is None and policy["versions"][0]["state"] == "draft"
    assert policy["versions"][0]["block_severity"] == 9 and policy["versions"][0]["quarantine_severity"] == 5

    # not active yet: a session cannot use it
    refused = api.post("/api/v1/sessions", {"name": "s", "policy": policy["id"]}, format="json")
    assert refused.status_code == 400 and "no approved version" in str(refused.json())

    own = reviewer_api.post(f"{POLICIES}/{policy['id']}/approve")
    assert own.status_code == 403 and "other than its author" in own.json()["error"]["message"]
    approved = client_for(second_reviewer).post(f"{POLICIES}/{policy['id']}/approve")
    assert approved.status_code == 200 and approved.json()["active_version"]["number"] == 1

    session = api.post("/api/v1/sessions", {"name": "s", "policy": policy["id"]}, format="json").json()
    assert session["policy"] == {"id": policy["id"], "name": "team", "version": 1}
    assert AuditEntry.objects.filter(action="policy.approved").count() == 1


def test_editing_an_approved_policy_makes_a_new_draft_and_leaves_the_active_version_alone(
    reviewer_api, second_reviewer
):
    strict = Policy.objects.get(name="strict")
    edited = reviewer_api.patch(
        f"{POLICIES}/{strict.pk}", {"quarantine_severity": 6, "scan_inputs_model": True}, format="json"
    )
    assert edited.status_code == 200
    versions = {v["number"]: v for v in edited.json()["versions"]}
    assert versions[2]["state"] == "draft" and versions[2]["quarantine_severity"] == 6
    assert versions[2]["scan_inputs_model"] is True and versions[1]["scan_inputs_model"] is False
    assert versions[1]["quarantine_severity"] == 5 and edited.json()["active_version"]["number"] == 1
    assert PolicyVersion.objects.get(policy=strict, number=1).quarantine_severity == 5

    client_for(second_reviewer).post(f"{POLICIES}/{strict.pk}/approve")
    assert Policy.objects.get(pk=strict.pk).active_version.number == 2


def test_admins_roll_back_to_an_earlier_version(reviewer_api, second_reviewer, admin_api):
    strict = Policy.objects.get(name="strict")
    reviewer_api.patch(f"{POLICIES}/{strict.pk}", {"block_severity": 10}, format="json")
    client_for(second_reviewer).post(f"{POLICIES}/{strict.pk}/approve")
    rolled = admin_api.post(f"{POLICIES}/{strict.pk}/versions/1/activate")
    assert rolled.status_code == 200 and rolled.json()["active_version"]["block_severity"] == 8
    entry = AuditEntry.objects.get(action="policy.activated")
    assert entry.data["version"] == 1 and entry.data["previous"] == 2
    assert admin_api.post(f"{POLICIES}/{strict.pk}/versions/9/activate").status_code == 404


def test_bad_settings_are_400_naming_each(reviewer_api):
    strict = Policy.objects.get(name="strict")
    response = reviewer_api.patch(
        f"{POLICIES}/{strict.pk}", {"block_severity": 0, "blocked_flags": ["nope"]}, format="json"
    )
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"block_severity", "blocked_flags"}


def test_sessions_take_a_preset_name_or_an_id_and_default_to_the_setting(api, settings):
    assert api.post("/api/v1/sessions", {"name": "a"}, format="json").json()["policy"]["name"] == "default"
    assert (
        api.post("/api/v1/sessions", {"name": "b", "policy": "strict"}, format="json").json()["policy"][
            "name"
        ]
        == "strict"
    )
    settings.GOVERNANCE_POLICY = "permissive"
    assert api.post("/api/v1/sessions", {"name": "c"}, format="json").json()["policy"]["name"] == "permissive"
    unknown = api.post("/api/v1/sessions", {"name": "d", "policy": "lenient"}, format="json")
    assert unknown.status_code == 400 and "No policy 'lenient'" in str(unknown.json())


def test_everyone_may_read_policies(api):
    names = [p["name"] for p in api.get(POLICIES).json()["results"]]
    assert names == ["default", "permissive", "strict"]
