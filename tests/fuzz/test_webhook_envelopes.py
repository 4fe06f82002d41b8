"""Hypothesis against POST /webhooks/livechat/<integration>/: recorded LiveChat envelopes bent out
of shape (wrong types, missing fields, huge strings, nested junk, random actions), wrong secrets,
and bodies that are not envelopes at all.

Whatever comes in: no 5xx, every error is the contract's `{"error": {"type", "message", …}}`,
the secret is never echoed, and a refused webhook (wrong secret → 401, malformed → 400) leaves
no trace: no WebhookReceipt, Message, SessionEvent or Delivery row, the session unchanged.
"""
from __future__ import annotations

import copy
import json
import os

import pytest
from django.conf import settings
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from bridge.models import Delivery, HitlSession, Message, SessionEvent, WebhookReceipt
from bridge.webhooks.parsing import HANDLED_ACTIONS
from tests.conftest import make_integration
from tests.webhooks.helpers import FIXTURES, make_session, post_webhook

from . import stats

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

SUITE = "webhook fuzz"
SECRET = "whs-fuzz-6f1d9a0c3b"
OTHER_SECRET = "whs-other-tenant-77aa10"
SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
ERROR_TYPES = {
    "validation_error", "authentication_error", "not_found", "conflict", "rate_limited", "livechat_error",
    "internal_error",
}
FUZZ_SETTINGS = dict(deadline=None, database=None, suppress_health_check=list(HealthCheck))
ENVELOPES = {path.stem: json.loads(path.read_text()) for path in sorted(FIXTURES.glob("*.json"))}

# ---- strategies ----------------------------------------------------------------------------

leaves = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
junk = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30,
)
huge_strings = st.builds(lambda char, size: char * size, st.sampled_from("xé🙂\x00 "), st.integers(1_000, 200_000))
# Nested a few hundred levels deep: deep, but within what json.loads reads.
deep_nesting = st.builds(lambda depth, leaf: _nest(depth, leaf), st.integers(50, 400), leaves)
wrong_values = junk | huge_strings | deep_nesting | st.sampled_from(["", " ", "null", "0", [], {}, -1, 2**70, 1e308])
actions = st.sampled_from(sorted(HANDLED_ACTIONS)) | st.text(max_size=80) | junk


def _nest(depth, leaf):
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def _paths(value, prefix=()):
    """Every path into a JSON value: (key, index, …) tuples."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


def _set(document, path, value, *, delete=False):
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = copy.deepcopy(value)  # never share a drawn object: later mutations change it


@st.composite
def bent_envelopes(draw):
    """A recorded envelope, maybe as a new event, with up to four mutations (the test sets the secret)."""
    envelope = copy.deepcopy(ENVELOPES[draw(st.sampled_from(sorted(ENVELOPES)))])
    if "event" in envelope["payload"] and draw(st.booleans()):
        envelope["payload"]["event"]["id"] = f"PGDGHT5G_{draw(st.integers(10, 10**6))}"  # a new event
    for _ in range(draw(st.integers(0, 4))):
        paths = [p for p in _paths(envelope) if p and p[0] != "secret_key"]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        operation = draw(st.sampled_from(["replace", "replace", "delete", "add", "action"]))
        if operation == "replace":
            _set(envelope, path, draw(wrong_values))
        elif operation == "delete":
            _set(envelope, path, None, delete=True)
        elif operation == "action":
            envelope["action"] = draw(actions)
        else:  # a new field next to the chosen one
            parent = envelope
            for step in path[:-1]:
                parent = parent[step]
            if isinstance(parent, dict):
                parent[draw(st.text(max_size=20))] = copy.deepcopy(draw(wrong_values))
    return envelope


# A field the console cannot do without, per recorded envelope: what kind of value it must be.
REQUIRED_FIELDS = [
    ("incoming_event_message", ("action",), "action"),
    ("incoming_event_message", ("payload",), "object"),
    ("incoming_event_message", ("payload", "chat_id"), "id"),
    ("incoming_event_message", ("payload", "event"), "object"),
    ("incoming_event_message", ("payload", "event", "id"), "id"),
    ("incoming_event_file", ("payload", "event", "type"), "text"),
    ("user_added_to_chat", ("payload", "user"), "object"),
    ("user_added_to_chat", ("payload", "user", "id"), "user id"),
    ("chat_deactivated", ("payload", "chat_id"), "id"),
    ("chat_transferred", ("payload", "chat_id"), "id"),
    ("incoming_chat", ("payload", "chat"), "object"),
    ("incoming_chat", ("payload", "chat", "id"), "id"),
    ("chat_access_updated", ("payload", "id"), "id"),
]
MAX_LENGTH = {"action": 64, "id": 64, "user id": 255}
not_a_string = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.lists(leaves, max_size=3)
    | st.dictionaries(st.text(max_size=5), leaves, max_size=3)
)
not_an_object = st.none() | st.booleans() | st.integers() | st.text(max_size=10) | st.lists(leaves, max_size=3)


@st.composite
def broken_envelopes(draw):
    """An envelope missing, or with a wrong value for, a field the console cannot do without."""
    name, path, kind = draw(st.sampled_from(REQUIRED_FIELDS))
    envelope = copy.deepcopy(ENVELOPES[name])
    how = draw(st.sampled_from(["missing", "wrong type", "empty", "too long"]))
    if how == "missing":
        _set(envelope, path, None, delete=True)
    elif kind == "object":
        _set(envelope, path, draw(not_an_object))
    elif how == "wrong type":
        _set(envelope, path, draw(not_a_string))
    elif how == "too long" and kind in MAX_LENGTH:
        _set(envelope, path, draw(st.sampled_from("Pé🙂")) * draw(st.integers(MAX_LENGTH[kind] + 1, 50_000)))
    else:
        _set(envelope, path, "")
    return envelope


raw_bodies = st.one_of(
    st.binary(max_size=2000),
    st.text(max_size=2000).map(str.encode),
    junk.filter(lambda v: not isinstance(v, dict)).map(lambda v: json.dumps(v).encode()),
    st.builds(lambda depth: ("[" * depth + "]" * depth).encode(), st.integers(1, 900)),
    st.sampled_from([b"", b"{", b"}", b"null", b"[]", b'{"secret_key": ', b"\xef\xbb\xbf{}", b"\x00" * 10]),
)

# ---- fixtures and checks -------------------------------------------------------------------


@pytest.fixture
def hook(db):
    """An integration with a bot callback URL (so accepted webhooks would queue callbacks), a
    session for the fixtures' chat, and another tenant's integration."""
    mine = make_integration("acme", "main", webhook_secret=SECRET, callback_url="https://bot.example.com/hitl")
    make_integration("globex", "main", webhook_secret=OTHER_SECRET, callback_url="https://bot.example.com/other")
    session = make_session(mine.integration)
    return {"integration": mine.integration, "session": session}


def traces():
    return (
        WebhookReceipt.objects.count(), Message.objects.count(), SessionEvent.objects.count(),
        Delivery.objects.count(),
        tuple(HitlSession.objects.order_by("pk").values_list("status", "agent_id", "thread_id", "closed_at")),
    )


def reopen(session):
    """Each example starts from a waiting session (an earlier one may have closed or assigned it)."""
    HitlSession.objects.filter(pk=session.pk).update(status="waiting", agent_id="", agent_name="", closed_at=None)


def post(client, integration, body: bytes):
    return post_webhook(client, integration, body)  # and the worker's part, as a commit would run it


def encode(envelope) -> bytes:
    return json.dumps(envelope, ensure_ascii=False).encode()


def assert_contract(response, where: str) -> dict | None:
    assert response.status_code < 500, f"{where}: HTTP {response.status_code}"
    assert response["Content-Type"].startswith("application/json"), f"{where}: {response['Content-Type']}"
    assert SECRET.encode() not in response.content and OTHER_SECRET.encode() not in response.content, where
    assert len(response.content) < 20_000, f"{where}: a {len(response.content)}-byte answer echoes the input"
    body = json.loads(response.content)
    if response.status_code < 400:
        assert body.get("result") in ("accepted", "duplicate", "ignored"), f"{where}: {body!r:.200}"
        return None
    assert set(body) == {"error"}, f"{where}: {body!r:.300}"
    error = body["error"]
    assert {"type", "message"} <= set(error) <= {"type", "message", "details"}, f"{where}: {error!r:.300}"
    assert error["type"] in ERROR_TYPES and isinstance(error["message"], str) and error["message"], where
    return error


def refused_without_trace(client, hook, body: bytes, *, status: int, error_type: str, where: str):
    if len(body) > settings.MAX_REQUEST_BODY_BYTES:
        status, error_type = 413, "validation_error"
    before = traces()
    response = post(client, hook["integration"], body)
    stats.count(SUITE, f"{status}")
    error = assert_contract(response, where)
    assert response.status_code == status, f"{where}: HTTP {response.status_code} {response.content[:300]!r}"
    assert error["type"] == error_type, where
    assert traces() == before, f"{where}: a refused webhook left rows behind"


# ---- the fuzz tests ------------------------------------------------------------------------


@hypothesis_settings(max_examples=int(300 * SCALE), **FUZZ_SETTINGS)
@given(envelope=bent_envelopes())
def test_bent_envelopes_with_the_right_secret(client, hook, envelope):
    reopen(hook["session"])
    envelope["secret_key"] = SECRET
    body = encode(envelope)
    before = traces()
    response = post(client, hook["integration"], body)
    error = assert_contract(response, "bent envelope")
    result = json.loads(response.content)["result"] if response.status_code == 200 else str(response.status_code)
    stats.count(SUITE, result)
    assert response.status_code in (200, 400, 413), f"HTTP {response.status_code}"
    if response.status_code == 413:
        assert len(body) > settings.MAX_REQUEST_BODY_BYTES
    if response.status_code in (400, 413):
        assert error["type"] == "validation_error"
        assert traces() == before, "a malformed webhook left rows behind"
    if response.status_code == 200:
        # LiveChat's redelivery of an accepted webhook changes nothing: nothing doubled.
        after = traces()
        again = post(client, hook["integration"], body)
        stats.count(SUITE, "redelivered")
        assert again.status_code == 200 and json.loads(again.content)["result"] in ("duplicate", "ignored")
        assert traces() == after, "a redelivered webhook stored something again"


@hypothesis_settings(max_examples=int(150 * SCALE), **FUZZ_SETTINGS)
@given(envelope=broken_envelopes())
def test_envelopes_missing_what_the_console_needs_are_400(client, hook, envelope):
    reopen(hook["session"])
    envelope["secret_key"] = SECRET
    refused_without_trace(client, hook, encode(envelope), status=400, error_type="validation_error",
                          where=f"broken {envelope.get('action')!r:.40}")


recorded_envelopes = st.sampled_from(sorted(ENVELOPES)).map(lambda name: copy.deepcopy(ENVELOPES[name]))
wrong_secrets = st.one_of(
    st.just(None), st.just(OTHER_SECRET), st.text(max_size=60).filter(lambda s: s != SECRET), junk,
    st.sampled_from([SECRET.upper(), SECRET + " ", " " + SECRET, SECRET[:-1], SECRET + "\x00", "", 0, True]),
)


@hypothesis_settings(max_examples=int(200 * SCALE), **FUZZ_SETTINGS)
@given(envelope=st.one_of(bent_envelopes(), recorded_envelopes),
       secret=wrong_secrets)
def test_a_wrong_or_missing_secret_is_401_whatever_the_envelope(client, hook, envelope, secret):
    reopen(hook["session"])
    if secret is None:
        envelope.pop("secret_key", None)
    else:
        envelope["secret_key"] = secret
    refused_without_trace(client, hook, encode(envelope), status=401, error_type="authentication_error",
                          where=f"secret {type(secret).__name__}")


@hypothesis_settings(max_examples=int(150 * SCALE), **FUZZ_SETTINGS)
@given(body=raw_bodies)
def test_bodies_that_are_not_json_objects_are_400(client, hook, body):
    try:
        is_object = isinstance(json.loads(body), dict)
    except (ValueError, RecursionError):
        is_object = False
    if is_object:  # b"{}" and the like: a JSON object without the secret
        refused_without_trace(client, hook, body, status=401, error_type="authentication_error", where="object")
    else:
        refused_without_trace(client, hook, body, status=400, error_type="validation_error", where="not an object")


# ---- found by fuzzing ----------------------------------------------------------------------


@pytest.mark.parametrize("where", ["body", "payload"])
def test_json_nested_deeper_than_the_recursion_limit_is_400(client, hook, where):
    nest = "[" * 5000 + "]" * 5000
    body = nest if where == "body" else (
        '{"secret_key": "%s", "action": "incoming_chat", "payload": %s}' % (SECRET, nest)
    )
    before = traces()
    try:
        response = post(client, hook["integration"], body.encode())
    except RecursionError:
        pytest.fail("RecursionError escaped the view (HTTP 500)")
    assert response.status_code == 400
    assert json.loads(response.content)["error"]["type"] == "validation_error"
    assert traces() == before
