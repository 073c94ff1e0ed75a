"""apps.sessions.selectors: a session only for its owner (or staff), read in one query with
what a submission's checks need."""

from __future__ import annotations

import uuid

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.sessions.selectors import session_get_for_user

pytestmark = pytest.mark.django_db


def test_owner_gets_the_session_with_its_policy_in_one_query(user, session):
    for _ in range(2):  # the second call reuses the compiled read
        with CaptureQueriesContext(connection) as queries:
            found = session_get_for_user(user=user, session_id=str(session.pk))
            version = found.policy.active_version if found.policy_id else None
            owner = found.owner.username
        assert len(queries) == 1
        assert (found.pk, found.name, owner) == (session.pk, session.name, user.username)
        assert version == session.policy.active_version if session.policy_id else version is None


def test_another_user_does_not_see_the_session_and_staff_does(other_user, make_user, session):
    assert session_get_for_user(user=other_user, session_id=session.pk) is None
    staff = make_user("reviewer-staff", is_staff=True)
    assert session_get_for_user(user=staff, session_id=session.pk).pk == session.pk
    assert session_get_for_user(user=staff, session_id=uuid.uuid4()) is None


def test_a_malformed_id_is_a_validation_error_as_the_orm_raises(user):
    with pytest.raises(ValidationError):
        session_get_for_user(user=user, session_id="not-a-uuid")
