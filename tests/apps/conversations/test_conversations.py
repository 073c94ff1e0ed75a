"""The conversation store: turns per session and model, bounded in tokens (oldest dropped
first), histories that never cross sessions, and the session's conversation API."""

from __future__ import annotations

import pytest

from apps.conversations.models import Turn
from apps.conversations.selectors import conversation_history
from apps.conversations.services import conversation_append, conversation_record_exchange, conversation_trim
from apps.core.exceptions import ValidationFailed
from apps.sessions.services import session_create

pytestmark = pytest.mark.django_db


def exchange(session, n: int, key: str = "m", max_tokens: int = 1000) -> None:
    conversation_record_exchange(
        session=session,
        key=key,
        prompt=f"question {n}",
        prompt_tokens=10,
        reply=f"answer {n}",
        reply_tokens=5,
        max_tokens=max_tokens,
    )


def test_history_is_the_newest_turns_within_the_budget_oldest_first(session):
    for n in range(3):
        exchange(session, n)
    everything = conversation_history(session_id=session.pk, key="m", max_tokens=1000)
    assert [t.content for t in everything] == [
        "question 0",
        "answer 0",
        "question 1",
        "answer 1",
        "question 2",
        "answer 2",
    ]
    assert [t.role for t in everything[:2]] == ["user", "assistant"]
    # 19 tokens hold the last question (10) and answer (5), not the answer before them (5 more)
    recent = conversation_history(session_id=session.pk, key="m", max_tokens=19)
    assert [t.content for t in recent] == ["question 2", "answer 2"]
    assert conversation_history(session_id=session.pk, key="other-model", max_tokens=1000) == []


def test_the_store_is_trimmed_to_its_bound_oldest_first(session):
    for n in range(4):
        exchange(session, n, max_tokens=40)  # 15 tokens an exchange: at most 40 kept
    kept = list(Turn.objects.filter(conversation__session=session).values_list("content", flat=True))
    assert kept == ["answer 1", "question 2", "answer 2", "question 3", "answer 3"]
    assert sum(Turn.objects.filter(conversation__session=session).values_list("tokens", flat=True)) <= 40
    assert conversation_trim(session=session, key="m", max_tokens=5) == 4
    assert list(Turn.objects.values_list("content", flat=True)) == ["answer 3"]


def test_two_sessions_never_see_each_others_turns(user, other_user):
    mine = session_create(owner=user, name="mine")
    theirs = session_create(owner=other_user, name="theirs")
    conversation_record_exchange(
        session=mine,
        key="m",
        prompt="my secret plan",
        prompt_tokens=3,
        reply="ok",
        reply_tokens=1,
        max_tokens=99,
    )
    conversation_record_exchange(
        session=theirs,
        key="m",
        prompt="their question",
        prompt_tokens=2,
        reply="sure",
        reply_tokens=1,
        max_tokens=99,
    )
    assert [t.content for t in conversation_history(session_id=theirs.pk, key="m", max_tokens=99)] == [
        "their question",
        "sure",
    ]
    assert [t.content for t in conversation_history(session_id=mine.pk, key="m", max_tokens=99)] == [
        "my secret plan",
        "ok",
    ]


def test_bad_turns_are_refused(session):
    with pytest.raises(ValidationFailed):
        conversation_append(session=session, key="m", role="narrator", content="x", tokens=1)
    with pytest.raises(ValidationFailed):
        conversation_append(session=session, key="m", role="user", content="x", tokens=-1)


def test_conversation_api_shows_and_clears_only_the_owners(api, other_api, session):
    exchange(session, 1, key="tiny-gpt2")
    exchange(session, 1, key="other")
    url = f"/api/v1/sessions/{session.pk}/conversation"
    body = api.get(url).json()
    by_model = {c["model"]: c for c in body["conversations"]}
    assert set(by_model) == {"tiny-gpt2", "other"}
    assert by_model["tiny-gpt2"]["tokens"] == 15
    assert [t["content"] for t in by_model["tiny-gpt2"]["turns"]] == ["question 1", "answer 1"]
    # another user's session is not found, for reading and clearing alike
    assert other_api.get(url).status_code == 404
    assert other_api.delete(url).status_code == 404
    assert Turn.objects.count() == 4
    assert api.delete(f"{url}?model=other").json() == {"removed_turns": 2}
    assert api.delete(url).json() == {"removed_turns": 2}
    assert api.get(url).json() == {"conversations": []}
