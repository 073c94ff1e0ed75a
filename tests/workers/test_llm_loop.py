"""`llm` runs executed in this process (claimed and executed as a worker does, without the
broker) against the fake providers: both API styles streamed and not, tool rounds, argument
faults back to the model, retries (Retry-After, 5xx, the cap), timeouts, the API key's
confinement to the request header, per-session context, injection in a tool result, bounds.
The round trip through a real worker with child runs is tests/workers/test_llm_worker.py."""

from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path

import pytest
from django.db import connection

from apps.governance.models import Flag
from apps.llm.models import LlmUsage
from apps.llm.providers import providers_all
from apps.llm.reachability import probe_url
from apps.runs.models import Run, RunEvent
from apps.runs.services import run_claim
from apps.sessions.services import session_create
from apps.traces.models import ProvenanceEntry
from tests.fakes import llm_tools  # noqa: F401  (registers read_note and nap)
from tests.fakes.llm_servers import Fail, FakeLLMServer, Hang, Reply
from workers.execution import run_execute

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "sk-fake-7d3c0ffee-must-stay-in-the-header"
RESULT_KEYS = {"message", "tool_calls", "usage", "provider", "model"}


@pytest.fixture(scope="module")
def fakes():
    servers = {"openai": FakeLLMServer("openai"), "anthropic": FakeLLMServer("anthropic")}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(autouse=True)
def providers(settings, fakes, monkeypatch):
    for server in fakes.values():
        server.reset()
    monkeypatch.setenv("FAKE_LLM_KEY", KEY)
    settings.LLM_RETRY_BASE_SECONDS = 0.01
    settings.LLM_PROVIDERS = {
        f"{api}-{mode}": {
            "api": api,
            "base_url": server.base_url,
            "api_key_env": "FAKE_LLM_KEY",
            "models": ["fake-model"],
            "stream": mode == "stream",
            "timeout_seconds": 5,
        }
        for api, server in fakes.items()
        for mode in ("stream", "plain")
    }


def submit(api, session, provider="openai-stream", **payload) -> str:
    body = {"provider": provider, "model": "fake-model", **payload}
    body.setdefault("messages", [{"role": "user", "content": "hello"}])
    response = api.post(
        "/api/v1/runs", {"session": str(session.pk), "kind": "llm", "payload": body}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def execute(run_id: str) -> Run:
    run = run_claim(run_id=run_id, hostname="llm-test@here")
    assert run is not None
    run_execute(run=run)
    return Run.objects.get(pk=run_id)


def succeeded(run_id: str) -> dict:
    run = execute(run_id)
    assert run.status == "succeeded", run.error
    assert set(run.result) == RESULT_KEYS
    return run.result


def actions(run_id: str) -> list[str]:
    return list(
        ProvenanceEntry.objects.filter(trace__run_id=run_id).order_by("seq").values_list("action", flat=True)
    )


def tool_messages(body: dict) -> list[str]:
    """The tool results a request sends back, in either API's form."""
    found = []
    for message in body["messages"]:
        if message["role"] == "tool":
            found.append(message["content"])
        elif isinstance(message.get("content"), list):
            found += [block["content"] for block in message["content"] if block.get("type") == "tool_result"]
    return found


def asks_then_answers(name: str, arguments, answer=lambda results: f"done: {results[-1]}"):
    def respond(body: dict) -> Reply:
        results = tool_messages(body)
        return (
            Reply(text=answer(results)) if results else Reply(tool_calls=[(name, arguments)], usage=(20, 7))
        )

    return respond


@pytest.mark.parametrize("provider", ["openai-stream", "openai-plain", "anthropic-stream", "anthropic-plain"])
def test_a_tool_round_trip_in_both_api_styles(api, session, fakes, provider):
    fake = fakes[provider.split("-")[0]]
    fake.responder = asks_then_answers(
        "gaussian_rate",
        {"variance": 4, "distortion": 1},
        lambda r: f"The rate is {json.loads(r[-1])['rate_bits']} bits.",
    )
    run_id = submit(api, session, provider, tools=["gaussian_rate"], max_tokens=64)

    result = succeeded(run_id)

    assert result == {
        "message": {"role": "assistant", "content": "The rate is 1.0 bits."},
        "tool_calls": [
            {
                "name": "gaussian_rate",
                "arguments": {"variance": 4, "distortion": 1},
                "result": {"rate_bits": 1.0},
                "run": None,
            }
        ],
        "usage": {"input_tokens": 30, "output_tokens": 12},
        "provider": provider,
        "model": "fake-model",
    }
    first, second = fake.chat_requests()
    assert first.body["max_tokens"] == 64 and bool(first.body.get("stream")) == provider.endswith("stream")
    tool_names = [t.get("name") or t["function"]["name"] for t in first.body["tools"]]
    assert tool_names == ["gaussian_rate"]
    assert json.loads(tool_messages(second.body)[0]) == {"rate_bits": 1.0}
    assert actions(run_id).count("llm.model_call") == 2
    assert {"llm.tool_call", "llm.tool_result", "run.succeeded"} <= set(actions(run_id))
    streamed = "".join(e.data["text"] for e in RunEvent.objects.filter(run_id=run_id, type="output"))
    assert streamed == ("The rate is 1.0 bits." if provider.endswith("stream") else "")
    assert [e.type for e in RunEvent.objects.filter(run_id=run_id).exclude(type="output")] == [
        "tool_call",
        "tool_result",
    ]
    usage = LlmUsage.objects.get(session=session, provider=provider)
    assert (usage.input_tokens, usage.output_tokens, usage.runs) == (30, 12, 1)
    assert api.get(f"/api/v1/runs/{run_id}").json()["result"] == result


def test_partial_output_is_stored_while_the_run_streams(api, session, fakes):
    fakes["openai"].script = [Reply(text="word " * 60, delay=0.02)]
    run_id = submit(api, session)
    seen_while_running = []
    worker = threading.Thread(target=lambda: (execute(run_id), connection.close()))
    worker.start()
    while worker.is_alive():
        texts = list(
            RunEvent.objects.filter(run_id=run_id, type="output").values_list("data__text", flat=True)
        )
        if texts and Run.objects.get(pk=run_id).status == "running":
            seen_while_running.append("".join(texts))
        worker.join(0.05)
    assert seen_while_running and 0 < len(seen_while_running[0]) < len("word " * 60)
    assert Run.objects.get(pk=run_id).result["message"]["content"] == "word " * 60


@pytest.mark.parametrize(
    "arguments, fault",
    [
        ({"variance": -1, "distortion": 1}, "variance: -1 is less than or equal to the minimum of 0"),
        ({"variance": 1}, "'distortion' is a required property"),
        ("{not json", "not valid JSON"),
    ],
)
def test_bad_tool_arguments_go_back_to_the_model(api, session, fakes, arguments, fault):
    fakes["openai"].responder = asks_then_answers("gaussian_rate", arguments, lambda r: "I will fix my call.")
    run_id = submit(api, session, tools=["gaussian_rate"])

    result = succeeded(run_id)

    (call,) = result["tool_calls"]
    assert fault in call["result"]["error"] and call["run"] is None
    sent_back = tool_messages(fakes["openai"].chat_requests()[1].body)[0]
    assert fault in json.loads(sent_back)["error"]
    assert "llm.tool_arguments_invalid" in actions(run_id) and "llm.tool_call" not in actions(run_id)


def test_a_tool_not_offered_is_an_error_for_the_model(api, session, fakes):
    fakes["anthropic"].responder = asks_then_answers("python", {"code": "print(1)"}, lambda r: "ok")
    result = succeeded(submit(api, session, "anthropic-stream", tools=["gaussian_rate"]))
    assert "There is no tool 'python'" in result["tool_calls"][0]["result"]["error"]
    assert not Run.objects.filter(kind="python").exists()


def test_429_waits_as_retry_after_says_and_5xx_is_retried(api, session, fakes):
    fake = fakes["anthropic"]
    fake.script = [Fail(429, retry_after="1"), Fail(500), Fail(529), Reply(text="at last")]
    run_id = submit(api, session, "anthropic-plain")

    assert succeeded(run_id)["message"]["content"] == "at last"

    times = [r.at for r in fake.chat_requests()]
    assert len(times) == 4
    assert times[1] - times[0] >= 1.0  # Retry-After: 1, though the backoff base is 0.01s
    retries = ProvenanceEntry.objects.filter(trace__run_id=run_id, action="llm.model_retry").order_by("seq")
    assert [e.data["status"] for e in retries] == [429, 500, 529]
    assert retries[0].data["retry_after"] == 1.0


def test_retries_stop_at_the_runs_cap(api, session, fakes, settings):
    settings.LLM_MAX_RETRIES_PER_RUN = 2
    fakes["openai"].script = [Fail(503)] * 5
    run = execute(submit(api, session))
    assert run.status == "failed" and run.error["type"] == "ProviderError"
    assert "gave up after 2 retries" in run.error["message"]
    assert len(fakes["openai"].chat_requests()) == 3


def test_tokens_spent_before_a_failure_count_in_the_sessions_usage(api, session, fakes, settings):
    settings.LLM_MAX_RETRIES_PER_RUN = 1
    fake = fakes["anthropic"]
    fake.responder = asks_then_answers("gaussian_rate", {"variance": 2, "distortion": 1})
    ok = succeeded(submit(api, session, "anthropic-stream", tools=["gaussian_rate"]))
    fake.script = [Reply(tool_calls=[("gaussian_rate", {"variance": 2, "distortion": 1})], usage=(40, 9))]
    fake.script += [Fail(500), Fail(502)]  # the second call's retries run out

    run = execute(submit(api, session, "anthropic-stream", tools=["gaussian_rate"]))

    assert run.status == "failed" and "gave up after 1 retries" in run.error["message"]
    usage = LlmUsage.objects.get(session=session, provider="anthropic-stream")
    spent = (ok["usage"]["input_tokens"] + 40, ok["usage"]["output_tokens"] + 9)
    assert (usage.input_tokens, usage.output_tokens, usage.runs) == (*spent, 2)


def test_a_client_error_is_not_retried(api, session, fakes):
    fakes["openai"].script = [Fail(400, message="max_tokens is too large")]
    run = execute(submit(api, session, "openai-plain"))
    assert run.status == "failed" and "HTTP 400" in run.error["message"]
    assert len(fakes["openai"].chat_requests()) == 1


def test_a_hanging_provider_times_out(api, session, fakes, settings):
    settings.LLM_PROVIDERS["openai-stream"]["timeout_seconds"] = 0.5
    settings.LLM_MAX_RETRIES_PER_RUN = 1
    fakes["openai"].script = [Hang(5), Hang(5)]
    run = execute(submit(api, session))
    assert run.status == "failed" and "timed out after 0.5s" in run.error["message"]
    assert len(fakes["openai"].chat_requests()) == 2


def test_the_api_key_is_sent_in_the_header_and_nowhere_else(api, session, fakes, caplog):
    caplog.set_level(logging.DEBUG)
    fakes["openai"].responder = asks_then_answers("gaussian_rate", {"variance": 2, "distortion": 1})
    fakes["anthropic"].script = [Fail(401, message=f"invalid x-api-key {KEY}")]  # a server echoing it
    ok = succeeded(submit(api, session, "openai-stream", tools=["gaussian_rate"]))
    refused = execute(submit(api, session, "anthropic-plain"))

    assert ok["message"]["content"].startswith("done")
    assert refused.status == "failed" and "[redacted]" in refused.error["message"]
    requests = fakes["openai"].requests + fakes["anthropic"].requests
    assert requests and all(r.headers["authorization"] == f"Bearer {KEY}" for r in requests)
    for request in requests:
        others = {name: value for name, value in request.headers.items() if name != "authorization"}
        assert KEY not in json.dumps(others) and KEY not in request.path and KEY.encode() not in request.raw
    assert KEY not in caplog.text
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT count(*) FROM "{table}" t WHERE t::text LIKE %s', [f"%{KEY}%"])
            assert cursor.fetchone()[0] == 0, f"the key is in {table}"


def test_session_context_stays_in_its_session(api, session, user, fakes):
    fake = fakes["openai"]
    fake.responder = lambda body: Reply(
        text="Noted, PAPAYA it is." if "PAPAYA" in json.dumps(body) else "I do not know."
    )
    other = session_create(owner=user, name="other")
    ask = [{"role": "user", "content": "What is my code word?"}]

    succeeded(
        submit(
            api,
            session,
            messages=[{"role": "user", "content": "My code word is PAPAYA."}],
            use_session_context=True,
        )
    )
    in_other = succeeded(submit(api, other, messages=ask, use_session_context=True))
    without = succeeded(submit(api, session, messages=ask))
    again = succeeded(submit(api, session, messages=ask, use_session_context=True))

    first, for_other, for_without, for_again = (r.body["messages"] for r in fake.chat_requests())
    assert "PAPAYA" not in json.dumps(for_other) and in_other["message"]["content"] == "I do not know."
    assert "PAPAYA" not in json.dumps(for_without) and without["message"]["content"] == "I do not know."
    assert for_again == [
        {"role": "user", "content": "My code word is PAPAYA."},
        {"role": "assistant", "content": "Noted, PAPAYA it is."},
        {"role": "user", "content": "What is my code word?"},
    ]
    assert again["message"]["content"] == "Noted, PAPAYA it is."
    conversation = api.get(f"/api/v1/sessions/{other.pk}/conversation").json()["conversations"]
    assert [t["content"] for t in conversation[0]["turns"]] == ["What is my code word?", "I do not know."]


def test_an_injection_in_a_tool_result_is_flagged_and_kept_from_the_model(api, session, fakes):
    fakes["openai"].responder = asks_then_answers(
        "read_note", {"name": "poisoned"}, lambda r: "Summary done."
    )
    run_id = submit(api, session, tools=["read_note"])

    result = succeeded(run_id)

    (call,) = result["tool_calls"]
    assert call["result"]["error"].startswith("The tool result was withheld by governance: jailbreak")
    sent_back = " ".join(tool_messages(fakes["openai"].chat_requests()[1].body))
    assert "Ignore all previous instructions" not in sent_back and "withheld by governance" in sent_back
    flags = Flag.objects.filter(trace__run_id=run_id)
    assert (
        flags.exists() and "jailbreak" in {f.type for f in flags} and {f.source for f in flags} == {"output"}
    )
    assert flags.first().span["field"].startswith("result.tool_calls[0].result")
    (entry,) = ProvenanceEntry.objects.filter(trace__run_id=run_id, action="llm.tool_result")
    assert entry.data["withheld"] is True and entry.data["findings"] >= 1


def test_a_clean_tool_result_reaches_the_model_unflagged(api, session, fakes):
    fakes["openai"].responder = asks_then_answers("read_note", {"name": "greeting"})
    run_id = submit(api, session, tools=["read_note"])
    result = succeeded(run_id)
    assert result["tool_calls"][0]["result"] == {"note": "Hello from the shared notes."}
    assert not Flag.objects.filter(trace__run_id=run_id).exists()


def test_the_tool_loop_is_bounded(api, session, fakes, settings):
    settings.LLM_MAX_TOOL_ROUNDS = 1
    fakes["openai"].responder = lambda body: Reply(
        tool_calls=[("gaussian_rate", {"variance": 2, "distortion": 1})]
    )
    run = execute(submit(api, session, tools=["gaussian_rate"]))
    assert run.status == "failed" and run.error["type"] == "LlmLimitExceeded"
    assert len(fakes["openai"].chat_requests()) == 2
    # the two calls' tokens were spent: the session's usage counts them though the run failed
    usage = api.get(f"/api/v1/sessions/{session.pk}/llm-usage").json()["usage"]
    assert [(u["input_tokens"], u["output_tokens"], u["runs"]) for u in usage] == [(20, 10, 1)]


def test_the_token_budget_bounds_a_run(api, session, fakes, settings):
    settings.LLM_MAX_TOKENS_PER_RUN = 40
    fakes["openai"].responder = lambda body: Reply(
        tool_calls=[("gaussian_rate", {"variance": 2, "distortion": 1})], usage=(30, 15)
    )
    run = execute(submit(api, session, tools=["gaussian_rate"], max_tokens=100))
    assert run.status == "failed" and "LLM_MAX_TOKENS_PER_RUN" in run.error["message"]
    (request,) = fakes["openai"].chat_requests()
    assert request.body["max_tokens"] == 40  # a call never asks for more than the run has left


def readme_llm_examples() -> tuple[str, str]:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## Remote LLMs") :]
    section = section[: section.index("\n## ", 1)]
    local, hosted = re.findall(r"```sh\n(.+?)\n```", section, flags=re.S)[:2]
    return local, hosted


def test_the_readmes_curl_example_runs_against_a_local_openai_compatible_server(
    api, session, fakes, settings
):
    local, _ = readme_llm_examples()
    providers = json.loads(re.search(r"export LLM_PROVIDERS='(.+?)'", local).group(1))
    (name,) = providers
    providers[name]["base_url"] = fakes["openai"].base_url  # the local server, faked on loopback
    settings.LLM_PROVIDERS = providers
    body = re.search(r'/api/v1/runs -d "(.+?)"\n#', local, flags=re.S).group(1)
    body = json.loads(body.replace('\\"', '"').replace("$SESSION", str(session.pk)))
    shown = json.loads(re.search(r"#   result: (.+)", local, flags=re.S).group(1).replace("\n#", "\n"))
    fakes["openai"].responder = asks_then_answers(
        "gaussian_rate", {"variance": 4, "distortion": 1}, lambda r: "... 1 bit per sample ..."
    )

    response = api.post("/api/v1/runs", body, format="json")
    assert response.status_code == 201, response.content
    result = succeeded(response.json()["id"])

    assert set(result) == set(shown) and result["tool_calls"] == shown["tool_calls"]
    assert result["message"] == shown["message"] and set(result["usage"]) == set(shown["usage"])
    assert (result["provider"], result["model"]) == (shown["provider"], shown["model"])
    # no api_key_env (a local Ollama needs none): the client's placeholder, not some variable's value
    assert {r.headers["authorization"] for r in fakes["openai"].chat_requests()} == {"Bearer no-key"}


def test_the_readmes_hosted_providers_are_valid_and_probed_without_a_key(settings):
    _, hosted = readme_llm_examples()
    settings.LLM_PROVIDERS = json.loads(
        re.search(r"export LLM_PROVIDERS='(.+?)'", hosted, flags=re.S).group(1)
    )
    providers = providers_all()
    assert {p.api for p in providers.values()} == {"openai", "anthropic"}
    for provider in providers.values():
        assert provider.api_key_env and provider.api_key_env in hosted  # a variable's name, not a key
    # what /ready asks each of them: the unauthenticated models list, which spends no tokens
    assert {probe_url(p) for p in providers.values()} == {
        "https://api.openai.com/v1/models",
        "https://api.anthropic.com/v1/models",
    }
