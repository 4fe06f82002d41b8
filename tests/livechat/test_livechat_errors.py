"""Unit tests of the error taxonomy, config/identity safety and call_with_retry (no network)."""
from datetime import datetime, timedelta, timezone

import pytest
import requests
import responses

from bridge.livechat import (
    CustomerIdentity,
    LiveChatAuthError,
    LiveChatConfig,
    LiveChatPermanentError,
    LiveChatTransientError,
    call_with_retry,
    classify,
    http_session_for,
)


@pytest.mark.parametrize("error_type", ["authentication", "authorization"])
def test_auth_types(error_type):
    error = classify(401, {"error": {"type": error_type, "message": "Invalid access token"}})
    assert isinstance(error, LiveChatAuthError)
    assert (error.type, error.status, error.message) == (error_type, 401, "Invalid access token")


@pytest.mark.parametrize("error_type", ["too_many_requests", "service_unavailable", "internal", "request_timeout"])
def test_transient_types(error_type):
    assert isinstance(classify(400, {"error": {"type": error_type, "message": "x"}}), LiveChatTransientError)


@pytest.mark.parametrize("error_type", ["validation", "not_found", "chat_inactive", "customer_banned",
                                        "group_not_found", "entity_too_large", "limit_reached", "license_expired"])
def test_permanent_types(error_type):
    assert isinstance(classify(400, {"error": {"type": error_type, "message": "x"}}), LiveChatPermanentError)


def test_unknown_type_goes_by_status():
    assert isinstance(classify(502, {"error": {"type": "brand_new", "message": "x"}}), LiveChatTransientError)
    assert isinstance(classify(422, {"error": {"type": "brand_new", "message": "x"}}), LiveChatPermanentError)


@pytest.mark.parametrize("status,cls,type_", [
    (500, LiveChatTransientError, "http"), (503, LiveChatTransientError, "http"),
    (429, LiveChatTransientError, "too_many_requests"), (408, LiveChatTransientError, "request_timeout"),
    (401, LiveChatAuthError, "authentication"), (403, LiveChatAuthError, "authorization"),
    (404, LiveChatPermanentError, "http"), (400, LiveChatPermanentError, "http"),
    (200, LiveChatTransientError, "http"),  # a 200 whose body was not JSON
])
def test_without_a_livechat_body(status, cls, type_):
    error = classify(status, None)
    assert type(error) is cls and error.type == type_ and error.status == status


def test_oauth_exception_is_auth():
    error = classify(401, {"oauth_exception": "invalid_request", "exception_description": "bad redirect_uri"})
    assert isinstance(error, LiveChatAuthError)
    assert error.message == "bad redirect_uri"


def test_retry_after_header():
    error = classify(429, {"error": {"type": "too_many_requests", "message": "slow down"}}, headers={"Retry-After": "3"})
    assert error.retry_after == 3.0


def test_messages_never_carry_credentials():
    error = classify(401, {"error": {"type": "authentication",
                                     "message": "bad Bearer dal:abc123 and Basic c2VjcmV0 cookie __lc_cst=xyz; ok"}})
    text = f"{error} {error!r} {error.message}"
    for secret in ("dal:abc123", "c2VjcmV0", "xyz"):
        assert secret not in text
    assert "Bearer [REDACTED]" in error.message and "__lc_cst=[REDACTED]" in error.message


def test_config_and_identity_repr_hide_secrets():
    config = LiveChatConfig(api_url="https://api", accounts_url="https://acc", api_version="3.6", client_id="c",
                            organization_id="o", agent_token="AGENT-TOKEN", agent_oauth_token="OAUTH-TOKEN")
    identity = CustomerIdentity(customer_id="cust", access_token="dal:TOKEN", cookies={"__lc_cst": "COOKIE"})
    text = repr(config) + repr(identity)
    for secret in ("AGENT-TOKEN", "OAUTH-TOKEN", "dal:TOKEN", "COOKIE"):
        assert secret not in text
    assert "cust" in text


def test_config_urls():
    config = LiveChatConfig(api_url="https://api.livechatinc.com/", accounts_url="https://accounts.livechat.com",
                            api_version="3.6", client_id="c", organization_id="o", agent_token="t")
    assert config.action_url("customer", "send_event") == "https://api.livechatinc.com/v3.6/customer/action/send_event"
    assert config.token_url == "https://accounts.livechat.com/v2/customer/token"


def test_token_freshness_margin():
    now = datetime.now(timezone.utc)
    identity = CustomerIdentity(access_token="dal:x", expires_at=now + timedelta(minutes=6))
    assert identity.token_is_fresh(now)
    identity.expires_at = now + timedelta(minutes=4)
    assert not identity.token_is_fresh(now)
    assert not CustomerIdentity().token_is_fresh(now)


@responses.activate
def test_shared_session_never_keeps_cookies():
    responses.post("https://accounts.example/v2/customer/token", json={},
                   headers={"Set-Cookie": "__lc_cid=one; Path=/"})
    responses.get("https://accounts.example/echo", json={})
    session = http_session_for("unit-test-cookies")
    assert http_session_for("unit-test-cookies") is session
    session.post("https://accounts.example/v2/customer/token")
    session.get("https://accounts.example/echo")
    assert len(session.cookies) == 0
    assert "Cookie" not in responses.calls[1].request.headers


def test_call_with_retry_retries_transient_then_succeeds():
    calls, sleeps = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise LiveChatTransientError("service_unavailable", "down", status=503)
        return "ok"

    assert call_with_retry(flaky, sleep=sleeps.append) == "ok"
    assert len(calls) == 3 and len(sleeps) == 2 and sleeps[1] > sleeps[0]


def test_call_with_retry_honours_retry_after_and_budget():
    sleeps = []

    def limited():
        raise LiveChatTransientError("too_many_requests", "slow down", status=429, retry_after=4.0)

    with pytest.raises(LiveChatTransientError):
        call_with_retry(limited, budget_seconds=10.0, sleep=sleeps.append)
    assert sleeps == [4.0, 4.0]  # a third wait would pass the 10 s budget


def test_call_with_retry_does_not_retry_permanent_or_auth():
    for error in (LiveChatPermanentError("validation", "no"), LiveChatAuthError("authentication", "no")):
        calls = []

        def failing():
            calls.append(1)
            raise error

        with pytest.raises(type(error)):
            call_with_retry(failing, sleep=lambda s: None)
        assert calls == [1]


@responses.activate
def test_connection_error_is_transient_and_safe():
    from bridge.livechat import AgentClient

    responses.post("https://api.example/v3.6/agent/action/get_chat",
                   body=requests.ConnectionError("boom Basic SECRETTOKEN"))
    config = LiveChatConfig(api_url="https://api.example", accounts_url="https://acc.example", api_version="3.6",
                            client_id="c", organization_id="o", agent_token="SECRETTOKEN")
    with pytest.raises(LiveChatTransientError) as caught:
        AgentClient(config, session=requests.Session()).get_chat(chat_id="X")
    assert caught.value.type == "connection"
    assert "SECRETTOKEN" not in str(caught.value) and caught.value.__cause__ is None


def test_errors_survive_pickling():
    import pickle

    error = pickle.loads(pickle.dumps(LiveChatTransientError("too_many_requests", "slow", status=429, retry_after=2.0)))
    assert (type(error), error.type, error.message, error.status, error.retry_after) == (
        LiveChatTransientError, "too_many_requests", "slow", 429, 2.0)
