"""Generated requests to the run endpoints, as an attacker would send them: any of them is
answered below 500, a refusal in the one error shape, and a refused submission stores nothing
(a batch is all or nothing).

Bodies are raw JSON text (duplicate keys, NaN, huge integers, lone surrogates escaped or as
bytes, BOMs), sent with odd content types, encodings and Idempotency-Keys; run items mix
valid runs with every field of the wrong type or form and kind payloads mutated from valid
ones. Bounded for the suite (FUZZ_EXAMPLES, derandomized); raise it to explore."""

from __future__ import annotations

import gzip
import json
import os
import uuid
import zlib
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.runs.api.serializers import RunBatchSubmitInputSerializer
from apps.runs.models import Run, RunBatch
from apps.sessions.services import session_create
from apps.traces.models import ProvenanceEntry, Trace
from tests.apps.runs.test_batch_validation import _by_drf, _cleaned

pytestmark = pytest.mark.django_db

RUNS = "/api/v1/runs"
BATCH = RUNS + "/batch"
EXPLORING = "FUZZ_EXAMPLES" in os.environ


def fuzz(examples: int) -> settings:
    """`examples` in the suite (derandomized, a few seconds); FUZZ_EXAMPLES=N explores."""
    return settings(
        max_examples=int(os.environ.get("FUZZ_EXAMPLES", examples)),
        deadline=None,
        derandomize=not EXPLORING,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


ODD_STRINGS = [
    "",
    " ",
    "\n",
    "\x00",
    "a\x00b",
    "\ud800",
    "\udfff",
    "\ufeff",
    "\u2028",
    "١٢٣",
    "x" * 300,
    "x" * 70_000,
    "null",
    "true",
    "5",
    "-1",
    "1e400",
    "NaN",
    "cpu\n",
    "gpu.0\n",
    "gpu.٣",
]
HUGE_INTS = [10**400, -(10**400), 2**63, 2**64, -(2**63) - 1, 10**4000]
ODD_FLOATS = [float("nan"), float("inf"), float("-inf"), -0.0, 1e308, 5e-324, 0.5, 1e100]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-20, max_value=20)
    | st.integers()
    | st.sampled_from(HUGE_INTS)
    | st.sampled_from(ODD_FLOATS)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(ODD_STRINGS)
    | st.text(st.characters(blacklist_categories=()), max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=6) | st.sampled_from(ODD_STRINGS[:10]), children, max_size=4)
    ),
    max_leaves=12,
)

# A session id, the test user's own, another user's or no session's, in the forms uuid.UUID()
# parses and the schema does not.
SESSION_FORMS = [
    lambda s: s,
    lambda s: s.upper(),
    lambda s: "{" + s + "}",
    lambda s: "urn:uuid:" + s,
    lambda s: s.replace("-", ""),
    lambda s: s + "\n",
    lambda s: " " + s,
    lambda s: s + " ",
    lambda s: s + "\x00",
    lambda s: s.replace("1", "١").replace("2", "٢"),
    lambda s: s[:-1],
    lambda s: s + "0",
    lambda s: int(uuid.UUID(s)),
    lambda s: [s],
    lambda s: {"id": s},
]
session_ids = st.tuples(st.sampled_from(["own", "foreign", "random"]), st.sampled_from(SESSION_FORMS))
# mostly valid: a run reaches its kind's payload checks only past the session and the priority
valid_session = st.just(("own", SESSION_FORMS[0]))

KIND_NAMES = ["echo", "sleep", "python", "fgw", "fgw_batch", "rd_sweep", "inference", "llm"]
kinds = (
    st.sampled_from(KIND_NAMES)
    | st.sampled_from(KIND_NAMES)
    | st.sampled_from(KIND_NAMES)
    | st.sampled_from([" echo ", "ECHO", "echo\n", "x" * 65])
    | json_values
)
priorities = (
    st.integers(min_value=0, max_value=9)
    | st.sampled_from([-1, 10, True, False, "5", "5.0", 5.0, 5.5, -0.0, "", " 5 ", "٥", None])
    | st.sampled_from(HUGE_INTS + ODD_FLOATS)
    | json_values
)

RANDOM_SESSION = "6f1c2a4e-0b7d-4c1e-9a3f-2d5e8b7c6a10"
GRAPH = {"structure": [[0.0, 1.0], [1.0, 0.0]], "features": [[0.5], [1.0]], "weights": [0.5, 0.5]}
EDGES = {"n": 2, "edges": [[0, 1, 2.0]], "structure_kind": "adjacency"}
PAYLOADS = {
    "echo": {"text": "hi", "n": [1, 2.5, None]},
    "sleep": {"seconds": 1},
    "python": {
        "code": "print(1)",
        "timeout_s": 1,
        "memory_mb": 64,
        "env": {},
        "interpreter": None,
        "files": [],
    },
    "fgw": {"source": GRAPH, "target": {"artifact": RANDOM_SESSION}, "alpha": 0.5, "device": "auto"},
    "fgw_batch": {"pairs": [{"source": GRAPH, "target": GRAPH}, {"source": EDGES, "target": EDGES}]},
    "rd_sweep": {"graph": EDGES, "levels": [1, 2], "epsilon": 0.01, "max_iter": 10},
    "inference": {"task": "embed", "inputs": ["a"], "device": "cpu"},
    "llm": {"provider": "p", "model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5},
}


# What a leaf of a payload is replaced with: mostly values at the edges of JSON and of its types
odd_leaves = (
    st.sampled_from([*HUGE_INTS, *ODD_FLOATS, *ODD_STRINGS, None, True, False, [], {}, -1, 0, 1, 10**6])
    | st.integers()
)


@st.composite
def mutated(draw: st.DrawFn, value: Any, depth: int = 0) -> Any:
    """`value` with some of its parts replaced, dropped or added to."""
    if depth > 5 or draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            choice = draw(st.integers(0, 9))
            if choice == 0:
                continue
            out[key] = draw(mutated(item, depth + 1)) if choice < 5 else item
        if draw(st.integers(0, 7)) == 0:
            out[draw(st.text(max_size=6))] = draw(odd_leaves)
        return out
    if isinstance(value, list):
        items = [draw(mutated(item, depth + 1)) if draw(st.integers(0, 2)) == 0 else item for item in value]
        if draw(st.integers(0, 5)) == 0:
            items.append(draw(odd_leaves | st.just(value[0] if value else None)))
        return items
    return draw(odd_leaves)


class Pairs(list):
    """A JSON object as its (key, value) pairs, in order: a key may come twice."""


@st.composite
def run_items(draw: st.DrawFn) -> Pairs:
    """One run as (key, value) pairs: a key may come twice (the last one counts)."""
    kind = draw(kinds)
    template = PAYLOADS.get(kind, {}) if isinstance(kind, str) else {}
    pairs: list[tuple[str, Any]] = []
    if draw(st.integers(0, 9)):
        pairs.append(("session", draw(valid_session if draw(st.integers(0, 3)) else session_ids)))
    if draw(st.integers(0, 9)):
        pairs.append(("kind", kind))
    choice = draw(st.integers(0, 5))
    if choice in (1, 2, 3):
        pairs.append(("payload", draw(mutated(template))))
    elif choice == 4:
        pairs.append(("payload", dict(template)))
    elif choice == 5:
        pairs.append(("payload", draw(json_values)))
    if draw(st.integers(0, 3)) == 0:
        pairs.append(("priority", draw(priorities)))
    if draw(st.integers(0, 7)) == 0:
        pairs.append(
            (draw(st.sampled_from(["session", "kind", "payload", "priority", "extra"])), draw(json_values))
        )
    return Pairs(draw(st.permutations(pairs)))


class Sessions:
    def __init__(self, own: str, foreign: str) -> None:
        self.ids = {"own": own, "foreign": foreign}

    def resolve(self, value: Any) -> Any:
        """A drawn session (source, form) as the id it stands for; anything else as it is."""
        if isinstance(value, tuple) and len(value) == 2 and callable(value[1]):
            source, form = value
            return form(self.ids.get(source) or RANDOM_SESSION)
        return value


def to_json(value: Any, sessions: Sessions, ascii_only: bool) -> str:
    """JSON text as a client could write it: duplicate keys kept, NaN and Infinity written out."""
    if isinstance(value, Pairs):
        return (
            "{"
            + ", ".join(f"{json.dumps(key)}: {to_json(item, sessions, ascii_only)}" for key, item in value)
            + "}"
        )
    if isinstance(value, list):
        return "[" + ", ".join(to_json(item, sessions, ascii_only) for item in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(
                f"{json.dumps(key, ensure_ascii=ascii_only)}: {to_json(item, sessions, ascii_only)}"
                for key, item in value.items()
            )
            + "}"
        )
    return json.dumps(sessions.resolve(value), ensure_ascii=ascii_only)


CONTENT_TYPES = [
    "application/json",
    "application/json",
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=UTF8",
    'application/json; charset="utf-8"',
    "application/json; charset=latin-1",
    "application/json; charset=rot13",
    "application/json; charset=bz2",
    "application/json; charset=",
    "application/vnd.api+json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "multipart/form-data",
    "",
    "*/*",
]
ENCODINGS = [None, None, None, "gzip", "deflate", "br", "identity", "gzip, gzip", "x"]
IDEMPOTENCY_KEYS = [None, None, None, "k1", "k1", "k2", "k\n", " ", "", "x" * 256, "é", "a b", "\x00", "\x7f"]


PLAIN = {"content_type": "application/json", "encoding": None, "key": None, "ascii_only": True}


@st.composite
def transports(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly a plain request, so that most bodies reach the validation of their runs."""
    if draw(st.integers(0, 3)):
        return {
            **PLAIN,
            "key": draw(st.sampled_from([None, None, "k1", "k2"])),
            "bom": False,
            "truncate": False,
        }
    return {
        "content_type": draw(st.sampled_from(CONTENT_TYPES)),
        "encoding": draw(st.sampled_from(ENCODINGS)),
        "key": draw(
            st.sampled_from(IDEMPOTENCY_KEYS) | st.text(st.characters(max_codepoint=255), max_size=8)
        ),
        "ascii_only": draw(st.booleans()),
        "bom": draw(st.integers(0, 7)) == 0,
        "truncate": draw(st.integers(0, 7)) == 0,
    }


@pytest.fixture
def sessions(session, other_user) -> Sessions:
    return Sessions(str(session.pk), str(session_create(owner=other_user, name="theirs").pk))


def stored() -> tuple[int, int, int, int]:
    return (
        Run.objects.count(),
        RunBatch.objects.count(),
        Trace.objects.count(),
        ProvenanceEntry.objects.count(),
    )


def post(api, path: str, text: str, transport: dict[str, Any]):
    body = text.encode("utf-8", "surrogatepass")
    if transport["bom"]:
        body = b"\xef\xbb\xbf" + body
    if transport["truncate"]:
        body = body[: len(body) // 2]
    encoding = transport["encoding"]
    headers = {}
    if encoding:
        headers["HTTP_CONTENT_ENCODING"] = encoding
        if encoding.startswith("gzip"):
            body = gzip.compress(body)
        elif encoding == "deflate":
            body = zlib.compress(body)
    if transport["key"] is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = transport["key"]
    return api.generic("POST", path, body, content_type=transport["content_type"], **headers)


def assert_answered(response, sent: str) -> None:
    assert response.status_code < 500, (response.status_code, sent[:2000], response.content[:2000])
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}, sent[:2000]
        assert set(body["error"]) == {"code", "message", "fields"} and body["error"]["message"], body


def assert_stored(response, before: tuple[int, int, int, int], runs: int, batch: bool) -> None:
    runs_now, batches_now, traces_now, entries_now = stored()
    if response.status_code == 201:
        assert runs_now == before[0] + runs and traces_now == before[2] + runs
        assert batches_now == before[1] + (1 if batch else 0) and entries_now >= before[3] + runs
    else:
        assert stored() == before, response.content[:2000]


@fuzz(60)
@given(body=st.one_of(run_items(), run_items(), json_values), transport=transports())
def test_any_submit_is_answered_below_500_and_a_refusal_stores_nothing(api, sessions, body, transport):
    text = to_json(body, sessions, transport["ascii_only"])
    before = stored()
    response = post(api, RUNS, text, transport)
    assert_answered(response, text)
    assert_stored(response, before, runs=1, batch=False)


@st.composite
def batches(draw: st.DrawFn) -> Any:
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return draw(json_values)
    if choice == 1:
        return {"runs": draw(json_values)}
    runs = draw(st.lists(run_items() | json_values if choice == 2 else run_items(), min_size=0, max_size=6))
    if choice == 3:
        runs = runs * 20  # around the limit of 100
    return {"runs": runs}


@fuzz(40)
@given(body=batches(), transport=transports())
def test_any_batch_is_answered_below_500_and_stored_whole_or_not_at_all(api, sessions, body, transport):
    text = to_json(body, sessions, transport["ascii_only"])
    before = stored()
    response = post(api, BATCH, text, transport)
    assert_answered(response, text)
    count = len(body["runs"]) if isinstance(body, dict) and isinstance(body.get("runs"), list) else 0
    assert_stored(response, before, runs=count, batch=True)


def _parsed(items: list[Any], sessions: Sessions) -> list[Any]:
    return json.loads(to_json(items, sessions, True), parse_constant=lambda name: None)


@fuzz(150)
@given(items=st.lists(run_items(), min_size=1, max_size=4))
def test_the_batch_fast_path_cleans_and_refuses_as_the_serializer_does(items):
    runs = _parsed(items, Sessions(str(uuid.UUID(int=1)), str(uuid.UUID(int=2))))
    try:
        expected = _by_drf(runs)
    except Exception as exc:  # what the serializer itself cannot take is the serializer's to refuse
        pytest.fail(f"the serializer raised {exc!r} for {runs!r}")
    assert _cleaned(runs) == expected
    assert RunBatchSubmitInputSerializer(data={"runs": runs}).is_valid() == isinstance(expected, list)


QUERY_VALUES = (
    st.sampled_from(ODD_STRINGS[:-2])
    | st.text(max_size=10)
    | st.sampled_from(
        ["queued", "QUEUED", "pending", "1", "-1", "0", "1e3", "10" + "0" * 30, "99999999999999999999"]
    )
)


@fuzz(30)
@given(
    params=st.lists(
        st.tuples(
            st.sampled_from(["session", "status", "kind", "limit", "offset", "page", "ordering", "x"]),
            QUERY_VALUES | session_ids,
        ),
        max_size=4,
    ),
    run_id=QUERY_VALUES | session_ids,
)
def test_run_lists_and_lookups_with_odd_parameters_are_answered_below_500(api, sessions, params, run_id):
    query = "&".join(
        f"{quote(key)}={quote(str(sessions.resolve(value)), safe='', errors='surrogatepass')}"
        for key, value in params
    )
    response = api.get(f"{RUNS}?{query}")
    assert_answered(response, query)
    path = quote(str(sessions.resolve(run_id)), safe="", errors="surrogatepass")
    for suffix in ("", "/progress", "/events"):
        response = api.get(f"{RUNS}/{path}{suffix}")
        assert_answered(response, path)
        assert response.status_code in (200, 400, 404, 406), response.content[:500]
