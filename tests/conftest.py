from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.sessions.models import Session
from apps.sessions.services import session_create


@pytest.fixture
def make_user(db: None) -> Callable[..., object]:
    def make(username: str, **extra: object) -> object:
        return get_user_model().objects.create_user(username=username, password="pw-unused-123", **extra)

    return make


@pytest.fixture
def user(make_user: Callable[..., object]) -> object:
    return make_user("alice")


@pytest.fixture
def other_user(make_user: Callable[..., object]) -> object:
    return make_user("mallory")


def client_for(user: object) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def api(user: object) -> APIClient:
    return client_for(user)


@pytest.fixture
def other_api(other_user: object) -> APIClient:
    return client_for(other_user)


@pytest.fixture
def session(user: object) -> Session:
    return session_create(owner=user, name="s1")


def with_role(user, role: str):
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


@pytest.fixture
def reviewer(make_user):
    return with_role(make_user("rita", is_staff=True), "reviewer")


@pytest.fixture
def second_reviewer(make_user):
    return with_role(make_user("ravi", is_staff=True), "reviewer")


@pytest.fixture
def admin_user(make_user):
    return with_role(make_user("ada", is_staff=True), "admin")


@pytest.fixture
def reviewer_api(reviewer):
    return client_for(reviewer)


@pytest.fixture
def admin_api(admin_user):
    return client_for(admin_user)


@pytest.fixture
def sent(monkeypatch):
    """The runs whose messages the services would publish (the broker itself is tested in
    tests/workers): run ids, in order."""
    messages = []

    def send(run, producer=None):
        messages.append(run.pk)
        return True

    def send_shared(runs, producer=None):
        messages.extend(run.pk for run in runs)
        return len(runs)

    monkeypatch.setattr("apps.runs.services.submission.send_run", send)
    monkeypatch.setattr("apps.runs.services.submission._send_shared", send_shared)
    monkeypatch.setattr("apps.runs.services.reconcile.send_run", send)
    return messages
