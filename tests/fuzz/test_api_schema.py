"""Schemathesis against /api/v1/schema/: every operation of the bot API, generated from its own
OpenAPI document, with the integration's API key and without one (none, garbage, revoked, another
scheme). In-process against the Django WSGI app; LiveChat is the sandbox, so a start that reaches
LiveChat really opens a chat.

Whatever comes in: no 5xx, and every 4xx is the contract's `{"error": {"type", "message", …}}`
with one of the contract's types. With a key, the answers also conform to the schema itself
(documented status codes, content types and bodies). Without a valid key, every operation is 401.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from urllib.parse import unquote, urlsplit

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from django.urls import Resolver404, resolve
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bridge.services import sessions as sessions_service
from bridge.services.api_keys import create_api_key, revoke_api_key
from tests.conftest import make_integration

from . import stats

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.slow,
    # On PostgreSQL the in-process WSGI harness loses the test transaction's connection after the
    # first requests (not yet understood); the API is fuzzed on SQLite in `make test`, and the
    # NUL-character faults PostgreSQL alone raises are pinned in tests/security/test_nul_characters.py.
    pytest.mark.skipif(
        os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="schemathesis harness runs on SQLite only (see the comment above)",
    ),
]

SUITE = "schemathesis"
ERROR_TYPES = {
    "validation_error", "authentication_error", "not_found", "conflict", "rate_limited", "livechat_error",
    "internal_error",
}
# Per operation and generation mode with a valid key; per operation without one. FUZZ_SCALE=10
# (environment) fuzzes ten times longer, for a nightly run or before a release.
SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
EXAMPLES_WITH_KEY = max(1, int(30 * SCALE))
EXAMPLES_WITHOUT_KEY = max(2, int(16 * SCALE))
FUZZ_SETTINGS = dict(
    deadline=None,
    database=None,  # no example database: each run explores afresh (a failure prints its seed)
    suppress_health_check=list(HealthCheck),
)
SCHEMA_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Where the answers are right (the contract says so) but the OpenAPI document does not say it yet.
# Reported to the lead; remove an entry once bridge/api documents it.
#  - 413: any POST body over 1 MiB (RequestSizeLimitMiddleware), documented nowhere;
#  - 409 for a reused Idempotency-Key with another body, undocumented on POST /users and /stop;
#  - UserOutput.email is declared `format: email` but is "" for a user without an e-mail.
def _idempotency_conflict(response) -> bool:
    if response.status_code != 409:
        return False
    error = json.loads(response.content)["error"]
    return error["type"] == "conflict" and "idempotency_key" in (error.get("details") or {})


def schema_problems(case, response) -> list[str]:
    """Failures of schemathesis' own checks (server error, status code, content type and body
    against the schema); short texts, never megabytes."""
    try:
        case.validate_response(response, checks=SCHEMA_CHECKS)
    except FailureGroup as group:
        failures = group.exceptions
    except Failure as failure:
        failures = (failure,)
    else:
        return []
    return [f"{type(f).__name__}: {str(f)[:400]}" for f in failures]


@pytest.fixture
def wsgi_app():
    """The project's WSGI app, called in the test's thread (so it shares the test's transaction).

    Django's test client does the same: a finished request must not close the connection that
    holds the test transaction.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(wsgi_app):
    return schemathesis.openapi.from_wsgi("/api/v1/schema/", wsgi_app)


@pytest.fixture
def world(db, livechat_settings, sandbox, sandbox_org, settings, monkeypatch):
    """An integration on the sandbox, its sessions (open, closed) and another tenant's session."""
    settings.API_RATE_LIMIT = "1000000/min"
    settings.LIVECHAT_RETRY_SCHEDULE = [0, 0, 0]
    monkeypatch.setattr(sessions_service, "LIVECHAT_BUDGET_SECONDS", 2.0)
    mine = make_integration(
        "acme", "main", client_id=sandbox_org.client_id, organization_id=sandbox_org.organization_id,
        agent_token=sandbox_org.agent_token, group_id=5,
    )
    theirs = make_integration(
        "globex", "main", client_id=sandbox_org.client_id, organization_id=sandbox_org.organization_id,
        agent_token=sandbox_org.agent_token, group_id=5,
    )
    revoked, revoked_key = create_api_key(integration=mine.integration, name="old")
    revoke_api_key(api_key=revoked)

    def start(bundle, conversation_id, stop=False):
        client = Client(HTTP_AUTHORIZATION=f"Bearer {bundle.api_key}")
        response = client.post("/api/v1/sessions", {"conversation_id": conversation_id,
                                                     "user": {"external_id": "u-" + conversation_id}},
                               content_type="application/json")
        assert response.status_code == 201, response.content
        session_id = response.json()["id"]
        if stop:
            stopped = client.post(f"/api/v1/sessions/{session_id}/stop", {}, content_type="application/json")
            assert stopped.status_code == 200
        return session_id

    return {
        "mine": mine,
        "start": start,
        "closed": start(mine, "closed-conv", stop=True),
        "foreign": start(theirs, "their-conv"),
        "bad_auth": [
            None,
            "Bearer hitl_000000000000_" + "x" * 43,
            f"Bearer {revoked_key}",
            f"Bearer {theirs.api_key[:-1]}" + ("B" if theirs.api_key.endswith("A") else "A"),  # one character off
            f"Basic {sandbox_org.agent_token}",
            "Bearer",
            "hitl_nonsense",
        ],
    }


def assert_contract_error(response, where: str) -> None:
    assert response.status_code < 500, f"{where}: HTTP {response.status_code}: {response.text[:500]}"
    if response.status_code < 400:
        return
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.startswith("application/json"), f"{where}: HTTP {response.status_code} {content_type}"
    body = json.loads(response.content)
    assert isinstance(body, dict) and set(body) == {"error"}, f"{where}: {body!r:.300}"
    error = body["error"]
    assert isinstance(error, dict) and {"type", "message"} <= set(error), f"{where}: {error!r:.300}"
    assert error["type"] in ERROR_TYPES, f"{where}: error type {error['type']!r}"
    assert isinstance(error["message"], str) and error["message"], f"{where}: empty message"
    assert set(error) <= {"type", "message", "details"}, f"{where}: {sorted(error)}"


def _resolves(response) -> bool:
    try:
        resolve(unquote(urlsplit(response.request.url).path))
    except Resolver404:
        return False
    return True


def operations(api_schema):
    found = [result.ok() for result in api_schema.get_all_operations()]
    # Stop last: it closes the open session the other operations use.
    return sorted(found, key=lambda op: (op.path.endswith("/stop"), op.label))


def test_the_schema_covers_every_bot_endpoint(api_schema):
    labels = {op.label for op in operations(api_schema)}
    assert labels >= {
        "GET /api/v1/integration", "POST /api/v1/users", "POST /api/v1/sessions",
        "GET /api/v1/sessions/{session_id}", "GET /api/v1/sessions/{session_id}/messages",
        "POST /api/v1/sessions/{session_id}/messages", "POST /api/v1/sessions/{session_id}/stop",
    }


def _target_session(case, world, open_session, choice) -> None:
    if "session_id" in (case.path_parameters or {}) and choice != "generated":
        case.path_parameters["session_id"] = {"open": open_session, "closed": world["closed"],
                                              "foreign": world["foreign"]}[choice]


def test_with_a_valid_api_key(api_schema, world):
    headers = {"Authorization": f"Bearer {world['mine'].api_key}"}
    successes = Counter()
    for index, operation in enumerate(operations(api_schema)):
        open_session = world["start"](world["mine"], f"open-conv-{index}")
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @hypothesis_settings(max_examples=EXAMPLES_WITH_KEY, **FUZZ_SETTINGS)
            @given(case=operation.as_strategy(generation_mode=mode),
                   target=st.sampled_from(["generated", "open", "open", "closed", "foreign"]))
            def fuzz(case, target):
                _target_session(case, world, open_session, target)
                response = case.call(headers=headers)
                stats.count(SUITE, f"with key {response.status_code // 100}xx")
                successes[operation.label] += response.status_code < 300
                where = f"{operation.label} ({mode.value}, session {target})"
                assert_contract_error(response, where)
                if target == "foreign" and "session_id" in case.path_parameters:
                    # 401 when the generated case dropped the Authorization header; 409 for a reused
                    # Idempotency-Key (checked before the session is looked up, names no session).
                    assert response.status_code in (400, 401, 404) or _idempotency_conflict(response), (
                        f"{where}: another tenant's session answered HTTP {response.status_code}"
                    )
                problems = schema_problems(case, response)
                assert not problems, f"{where}: HTTP {response.status_code}: " + " | ".join(problems)

            fuzz()
    # The fuzzer got past validation into every operation's happy path (a start reached LiveChat).
    assert [op.label for op in operations(api_schema) if not successes[op.label]] == []


def test_without_a_valid_api_key_everything_is_401(api_schema, world):
    for operation in operations(api_schema):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @hypothesis_settings(max_examples=EXAMPLES_WITHOUT_KEY // 2, **FUZZ_SETTINGS)
            @given(case=operation.as_strategy(generation_mode=mode), auth=st.sampled_from(world["bad_auth"]),
                   target=st.sampled_from(["generated", "open", "foreign"]))
            def fuzz(case, auth, target):
                _target_session(case, world, world["foreign"], target)
                headers = dict(case.headers or {})
                headers.pop("Authorization", None)
                case.headers = headers
                response = case.call(headers={"Authorization": auth} if auth else None)
                stats.count(SUITE, "without key")
                where = f"{operation.label} ({mode.value}, auth {auth!s:.12})"
                assert_contract_error(response, where)
                if response.status_code == 404 and not _resolves(response):
                    return  # a path no view answers (a generated non-UUID id): 404 before any auth
                if response.status_code == 413:
                    return  # a body over 1 MiB is refused before anything reads it, the key included
                assert response.status_code == 401, f"{where}: HTTP {response.status_code} {response.text[:300]}"
                assert json.loads(response.content)["error"]["type"] == "authentication_error"

            fuzz()


def test_json_nested_deeper_than_the_recursion_limit_is_400(world):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {world['mine'].api_key}")
    response = client.post("/api/v1/users", '{"external_id": ' + "[" * 5000 + "]" * 5000 + "}",
                           content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "validation_error"
