"""The `llm` kind's web side: providers and tools from settings, payload validation with clear
400s, the providers/tools/usage endpoints, the per-provider concurrency slots, and /ready's
provider details (reachability without spending tokens)."""

from __future__ import annotations

import json
import socket

import pytest
from django.core.cache import cache

from apps.llm.models import LlmUsage
from apps.llm.providers import ProviderConfigError, provider_get, providers_all
from apps.llm.services import llm_usage_record, provider_slot_acquire, provider_slot_release
from apps.llm.tools import gaussian_rate, tool_get
from apps.runs.models import Run
from tests.fakes.llm_servers import FakeLLMServer

pytestmark = pytest.mark.django_db

KEY = "sk-test-never-leaks-5e1f"


@pytest.fixture
def fake():
    server = FakeLLMServer("openai")
    yield server
    server.stop()


@pytest.fixture
def providers(settings, fake, monkeypatch):
    monkeypatch.setenv("FAKE_OPENAI_KEY", KEY)
    settings.LLM_PROVIDERS = {
        "local": {
            "api": "openai",
            "base_url": fake.base_url,
            "api_key_env": "FAKE_OPENAI_KEY",
            "models": ["m1"],
        },
        "claude": {
            "api": "anthropic",
            "base_url": "http://127.0.0.1:9",
            "api_key_env": "FAKE_ANTHROPIC_KEY",
            "models": ["c1", "c2"],
            "concurrency": 3,
            "user_concurrency": 2,
        },
    }
    cache.delete("llm:providers:reachability")
    return settings.LLM_PROVIDERS


def submit(api, session, payload):
    return api.post(
        "/api/v1/runs", {"session": str(session.pk), "kind": "llm", "payload": payload}, format="json"
    )


def valid(**changes):
    return {"provider": "local", "model": "m1", "messages": [{"role": "user", "content": "hi"}], **changes}


def test_providers_come_from_settings_with_defaults(providers, settings):
    local = provider_get("local")
    assert local.api == "openai" and local.models == ("m1",) and local.stream is True
    assert local.concurrency == settings.LLM_PROVIDER_CONCURRENCY
    claude = provider_get("claude")
    assert (claude.concurrency, claude.user_concurrency) == (3, 2)


@pytest.mark.parametrize(
    "spec, fault",
    [
        ({"api": "gemini"}, "api must be one of"),
        ({"base_url": "ftp://x"}, "base_url"),
        ({"models": []}, "models"),
        ({"api_key_env": "not a name"}, "api_key_env"),
        ({"colour": "red"}, "unknown key"),
    ],
)
def test_a_malformed_provider_is_named(settings, spec, fault):
    settings.LLM_PROVIDERS = {"bad": {"api": "openai", "base_url": "http://x/v1", "models": ["m"], **spec}}
    with pytest.raises(ProviderConfigError, match=fault):
        providers_all()


def test_a_valid_payload_is_stored_with_defaults_on_the_io_queue(api, session, providers, settings):
    response = submit(api, session, valid(tools=["gaussian_rate"]))
    assert response.status_code == 201, response.content
    run = Run.objects.get(pk=response.json()["id"])
    assert run.queue == "io"
    assert run.payload["max_tokens"] == settings.LLM_DEFAULT_MAX_TOKENS
    assert run.payload["use_session_context"] is False and run.payload["tools"] == ["gaussian_rate"]


@pytest.mark.parametrize(
    "payload, field, fault",
    [
        (valid(provider="nope"), "provider", "Unknown provider"),
        (valid(model="gpt-5"), "model", "not allowed"),
        (valid(tools=["rm_rf"]), "tools", "Unknown tool"),
        (valid(tools=["python", "python"]), "tools", "at most once"),
        (valid(messages=[]), "messages", "non-empty"),
        (valid(messages=[{"role": "wizard", "content": "x"}]), "messages", "role"),
        (valid(messages=[{"role": "user", "content": "x", "name": "a"}]), "messages", "exactly"),
        (valid(messages=[{"role": "system", "content": "only system"}]), "messages", "user or assistant"),
        (valid(max_tokens="10"), "max_tokens", "integer"),
        (valid(max_tokens=10**9), "max_tokens", "LLM_MAX_OUTPUT_TOKENS"),
        (valid(use_session_context="yes"), "use_session_context", "true or false"),
        (valid(stream=True), "stream", "Unknown field"),
    ],
)
def test_bad_payloads_are_400_naming_the_field(api, session, providers, payload, field, fault):
    response = submit(api, session, payload)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert fault in json.dumps(error["fields"]["payload"][field])
    assert not Run.objects.exists()


def test_providers_endpoint_shows_no_key_or_variable(api, providers):
    response = api.get("/api/v1/llm/providers")
    assert response.status_code == 200
    names = {p["name"]: p for p in response.json()["providers"]}
    assert names["claude"]["models"] == ["c1", "c2"]
    assert "FAKE_OPENAI_KEY" not in response.content.decode() and KEY not in response.content.decode()


def test_tools_endpoint_lists_schemas(api):
    tools = {t["name"]: t for t in api.get("/api/v1/llm/tools").json()["tools"]}
    assert {"fgw_distance", "python", "gaussian_rate"} <= set(tools)
    assert tools["fgw_distance"]["run_kind"] == "fgw" and tools["gaussian_rate"]["run_kind"] is None
    assert tools["python"]["parameters"]["required"] == ["code"]


def test_tool_arguments_are_checked_against_the_schema():
    tool = tool_get("fgw_distance")
    assert (
        tool.argument_errors({"source": {"n": 2, "edges": [[0, 1]]}, "target": {"n": 1, "edges": []}}) == []
    )
    errors = tool.argument_errors({"source": {"n": 0, "edges": [[0]]}, "alpha": 2})
    text = " ".join(errors)
    assert "'target' is a required property" in text and "alpha" in text and "source/n" in text


def test_gaussian_rate_is_shannons():
    assert gaussian_rate({"variance": 4.0, "distortion": 1.0}) == {"rate_bits": 1.0}
    assert gaussian_rate({"variance": 1.0, "distortion": 2.0}) == {"rate_bits": 0.0}


def test_session_usage_adds_up_and_is_owner_scoped(api, other_api, session):
    llm_usage_record(session=session, provider="local", model="m1", input_tokens=10, output_tokens=3)
    llm_usage_record(session=session, provider="local", model="m1", input_tokens=5, output_tokens=1)
    (usage,) = api.get(f"/api/v1/sessions/{session.pk}/llm-usage").json()["usage"]
    assert (usage["input_tokens"], usage["output_tokens"], usage["runs"]) == (15, 4, 2)
    assert other_api.get(f"/api/v1/sessions/{session.pk}/llm-usage").status_code == 404
    assert LlmUsage.objects.count() == 1


def test_slots_cap_a_user_below_the_provider(providers, user, other_user):
    claude = provider_get("claude")  # 3 slots, 2 per user
    runs = [f"00000000-0000-0000-0000-00000000000{i}" for i in range(5)]
    assert provider_slot_acquire(provider=claude, run_id=runs[0], user=user, ttl_seconds=60)
    assert provider_slot_acquire(provider=claude, run_id=runs[1], user=user, ttl_seconds=60)
    # the user's third call waits; someone else still gets the last slot
    assert not provider_slot_acquire(provider=claude, run_id=runs[2], user=user, ttl_seconds=60)
    assert provider_slot_acquire(provider=claude, run_id=runs[3], user=other_user, ttl_seconds=60)
    assert not provider_slot_acquire(provider=claude, run_id=runs[4], user=other_user, ttl_seconds=60)
    # renewing a held slot is not taking another
    assert provider_slot_acquire(provider=claude, run_id=runs[0], user=user, ttl_seconds=60)
    provider_slot_release(provider=claude, run_id=runs[0])
    assert provider_slot_acquire(provider=claude, run_id=runs[2], user=user, ttl_seconds=60)


def test_a_slot_whose_holder_died_frees_itself(providers, user, other_user):
    claude = provider_get("claude")
    for i in range(2):
        assert provider_slot_acquire(
            provider=claude, run_id=f"00000000-0000-0000-0000-0000000000a{i}", user=user, ttl_seconds=-1
        )
    assert provider_slot_acquire(
        provider=claude, run_id="00000000-0000-0000-0000-0000000000b0", user=user, ttl_seconds=60
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ready_reports_each_provider_without_a_chat_call(client, providers, settings, fake):
    settings.LLM_PROVIDERS["claude"]["base_url"] = f"http://127.0.0.1:{closed_port()}"
    body = client.get("/ready").json()
    details = body["details"]["llm_providers"]
    assert details["status"] == "degraded"
    assert details["providers"]["local"]["status"] == "reachable"
    assert details["providers"]["local"]["http_status"] == 200
    assert details["providers"]["claude"]["status"] == "unreachable"
    # one models-list GET, no key sent, no tokens spent
    (probe,) = fake.requests
    assert probe.method == "GET" and probe.path == "/v1/models"
    assert "authorization" not in probe.headers and not fake.chat_requests()
    # cached: a second /ready does not probe again
    client.get("/ready")
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    "name, arguments",
    [
        (
            "fgw_distance",
            {"source": {"n": 2, "edges": [[0, 1]]}, "target": {"n": 3, "edges": [[0, 1], [1, 2]]}},
        ),
        (
            "fgw_distance",
            {
                "source": {"n": 1, "edges": [], "features": [[1.0]]},
                "target": {"n": 1, "edges": [], "features": [[2.0]]},
                "alpha": 0.0,
            },
        ),
        ("python", {"code": "print(6 * 7)", "timeout_s": 5}),
    ],
)
def test_a_run_tools_valid_arguments_make_a_valid_payload_of_its_kind(user, session, name, arguments):
    from apps.runs.kinds import get_kind

    tool = tool_get(name)
    assert tool.argument_errors(arguments) == []
    payload = get_kind(tool.run_kind).validate_payload(tool.to_payload(arguments), user=user, session=session)
    assert payload["source" if name == "fgw_distance" else "code"]


def test_tool_results_are_cut_to_what_the_model_needs():
    python = tool_get("python")
    seen = python.from_result({"stdout": "x" * 10_000, "stderr": "", "exit_code": 0, "duration_s": 0.1})
    assert seen["exit_code"] == 0 and len(seen["stdout"]) == 4000 and "duration_s" not in seen
    fgw = tool_get("fgw_distance").from_result(
        {"distance": 0.5, "n_iter": 3, "converged": True, "plan": [[1]]}
    )
    assert fgw == {"distance": 0.5, "converged": True, "n_iter": 3}


def test_ready_probes_an_anthropic_provider_at_its_models_list_without_its_key(client, settings, monkeypatch):
    server = FakeLLMServer("anthropic")
    monkeypatch.setenv("FAKE_ANTHROPIC_KEY", KEY)
    settings.LLM_PROVIDERS = {
        "claude": {
            "api": "anthropic",
            "base_url": server.base_url,
            "api_key_env": "FAKE_ANTHROPIC_KEY",
            "models": ["c"],
        }
    }
    cache.delete("llm:providers:reachability")
    try:
        details = client.get("/ready").json()["details"]["llm_providers"]
    finally:
        server.stop()
    assert details["status"] == "ok" and details["providers"]["claude"]["status"] == "reachable"
    (probe,) = server.requests
    assert probe.method == "GET" and probe.path == "/v1/models" and not server.chat_requests()
    assert "x-api-key" not in probe.headers and KEY.encode() not in probe.raw
