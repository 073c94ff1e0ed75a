"""The API against its own OpenAPI schema (schemathesis, in-process over WSGI): generated
requests, valid and invalid, as one real user while another user's data sits beside it.

Zero 5xx, every status documented, every response (errors included) in its documented
shape and content type, invalid input refused, and nothing of the other user's in any
answer. Bounded: a few examples per operation and mode, derandomized."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from apps.accounts.services import api_key_create
from apps.sessions.services import session_create
from apps.traces.services import trace_create
from config.wsgi import application

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(600)]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
EXAMPLES_PER_OPERATION = int(os.environ.get("SCHEMA_FUZZ_EXAMPLES", "6"))


@pytest.fixture
def two_users(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    for user in (alice, bob):
        session = session_create(owner=user, name=f"{user.username}'s")
        trace_create(user=user, session_id=session.pk)
        api_key_create(user=user, name="k")
    return alice, bob


@pytest.fixture
def alice_headers(two_users):
    alice, _ = two_users
    return {"Authorization": f"Token {Token.objects.create(user=alice).key}"}


@pytest.fixture
def bob_secrets(two_users):
    from apps.accounts.models import ApiKey
    from apps.sessions.models import Session
    from apps.traces.models import Trace

    _, bob = two_users
    values = [str(pk) for pk in Session.objects.filter(owner=bob).values_list("pk", flat=True)]
    values += [str(pk) for pk in Trace.objects.filter(session__owner=bob).values_list("pk", flat=True)]
    values += list(ApiKey.objects.filter(user=bob).values_list("prefix", flat=True))
    return values


@pytest.fixture
def api_schema(alice_headers):
    # As Django's test client does: the handler would close the test's database connection
    # (and its transaction) after every request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/v1/schema/", application, headers=alice_headers)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _fuzz(operation, mode: GenerationMode, headers: dict[str, str], secrets: list[str]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # report the first failure, unshrunk: bounded time
        suppress_health_check=list(HealthCheck),
    )
    def run(case) -> None:
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        for secret in secrets:
            assert secret not in response.text, f"another user's {secret!r} in the answer"

    run()


def test_the_api_keeps_to_its_schema(api_schema, alice_headers, bob_secrets):
    failures = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 30
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, alice_headers, bob_secrets)
            except Unsatisfiable:
                assert mode == GenerationMode.NEGATIVE, operation.label  # nothing to get wrong
            except BaseException as exc:  # noqa: BLE001 (every operation's failure, not only the first)
                failures.append(f"{operation.label} ({mode.value}): {exc}"[:3000])
    report = "\n\n".join(failures)
    if os.environ.get("SCHEMA_FUZZ_REPORT"):
        Path(os.environ["SCHEMA_FUZZ_REPORT"]).write_text(report)
    assert not failures, report
