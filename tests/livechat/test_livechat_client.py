"""The LiveChat client against the sandbox over real HTTP: every method, tokens, retries, faults."""
import logging

import pytest

from bridge.livechat import (
    AgentClient,
    ConfigurationClient,
    CustomerClient,
    CustomerIdentity,
    LiveChatAuthError,
    LiveChatPermanentError,
    LiveChatTransientError,
    call_with_retry,
)


@pytest.fixture
def identity():
    return CustomerIdentity()


@pytest.fixture
def customer(livechat_config, identity):
    return CustomerClient(livechat_config, identity)


@pytest.fixture
def agent(livechat_config):
    return AgentClient(livechat_config)


def start(customer, text="I need a human"):
    return customer.start_chat(group_id=0, events=[{"type": "message", "text": text}])


def token_requests(sandbox):
    return sandbox.requests("token")


# ---- Customer API ----------------------------------------------------------------------------
def test_ensure_token_mints_with_cookie_grant(customer, identity, sandbox, sandbox_org):
    customer.ensure_token()
    assert identity.changed and identity.access_token.startswith("dal:")
    assert identity.customer_id and set(identity.cookies) == {"__lc_cid", "__lc_cst"}
    assert identity.expires_at.tzinfo is not None
    [request] = token_requests(sandbox)
    assert request["json"] == {"grant_type": "cookie", "client_id": sandbox_org.client_id,
                               "organization_id": sandbox_org.organization_id,
                               "redirect_uri": sandbox_org.redirect_uri, "response_type": "token"}
    customer.ensure_token()  # still fresh: no second request
    assert len(token_requests(sandbox)) == 1


def test_renewed_token_keeps_the_same_customer(customer, identity, sandbox):
    chat = start(customer)
    first_customer, first_token = identity.customer_id, identity.access_token
    identity.changed = False
    customer.renew_token()
    assert identity.customer_id == first_customer and identity.access_token != first_token and identity.changed
    assert token_requests(sandbox)[-1]["headers"]["Cookie"] == "__lc_cid=[REDACTED]; __lc_cst=[REDACTED]"
    # The renewed token still reaches the same chat.
    assert customer.get_chat(chat_id=chat["chat_id"])["id"] == chat["chat_id"]


def test_token_expiring_soon_is_renewed(livechat_config, sandbox):
    sandbox.configure(token_ttl=200)  # under the 5-minute margin: every call renews
    identity = CustomerIdentity()
    client = CustomerClient(livechat_config, identity)
    client.ensure_token()
    client.ensure_token()
    assert len(token_requests(sandbox)) == 2


def test_persisted_identity_is_reused(livechat_config, identity, sandbox):
    CustomerClient(livechat_config, identity).ensure_token()
    stored = CustomerIdentity(identity.customer_id, identity.access_token, identity.expires_at, dict(identity.cookies))
    assert CustomerClient(livechat_config, stored).get_customer()["id"] == identity.customer_id
    assert len(token_requests(sandbox)) == 1 and not stored.changed


def test_two_customers_never_share_cookies(livechat_config, sandbox):
    one, two = CustomerIdentity(), CustomerIdentity()
    CustomerClient(livechat_config, one).ensure_token()
    CustomerClient(livechat_config, two).ensure_token()  # same pooled session
    assert one.customer_id != two.customer_id
    assert token_requests(sandbox)[1]["headers"]["Cookie"] is None


def test_agent_token_grant(livechat_config, sandbox, sandbox_org):
    from dataclasses import replace

    config = replace(livechat_config, agent_oauth_token=sandbox_org.agent_oauth_token)
    identity = CustomerIdentity()
    CustomerClient(config, identity).ensure_token()
    first = identity.customer_id
    CustomerClient(config, identity).renew_token()
    assert identity.customer_id == first
    grants = token_requests(sandbox)
    assert grants[0]["json"]["grant_type"] == "agent_token" and "entity_id" not in grants[0]["json"]
    assert grants[1]["json"]["entity_id"] == first
    assert grants[1]["headers"]["Authorization"] == "Bearer [REDACTED]"


def test_start_chat(customer, sandbox):
    result = customer.start_chat(group_id=5, events=[{"type": "message", "text": "title"},
                                                     {"type": "message", "text": "description"}],
                                 properties={"source": {"bot": "yes"}})
    assert len(result["chat_id"]) == 10 and result["chat_id"].isupper()
    assert len(result["thread_id"]) == 8
    assert result["event_ids"] == [f"{result['thread_id']}_1", f"{result['thread_id']}_2"]
    request = sandbox.requests("start_chat")[0]
    assert request["json"] == {"chat": {"access": {"group_ids": [5]}, "properties": {"source": {"bot": "yes"}},
                                        "thread": {"events": [{"type": "message", "text": "title"},
                                                              {"type": "message", "text": "description"}]}},
                               "active": True, "continuous": True}
    assert request["query"] == "organization_id=sandbox-org-1"


def test_send_event_and_get_chat(customer):
    chat = start(customer)
    event_id = customer.send_event(chat_id=chat["chat_id"], event={"type": "message", "text": "hello"})
    assert event_id == f"{chat['thread_id']}_2"
    got = customer.get_chat(chat_id=chat["chat_id"], thread_id=chat["thread_id"])
    assert [e["text"] for e in got["thread"]["events"]] == ["I need a human", "hello"]
    assert got["thread"]["active"] is True


def test_deactivate_then_resume_chat(customer, sandbox):
    chat = start(customer)
    customer.deactivate_chat(chat_id=chat["chat_id"])
    assert sandbox.requests("deactivate_chat")[0]["json"] == {"id": chat["chat_id"]}
    with pytest.raises(LiveChatPermanentError) as caught:
        customer.send_event(chat_id=chat["chat_id"], event={"type": "message", "text": "late"})
    assert caught.value.type == "chat_inactive"
    # attach_to_last_thread lets a late message land in the closed thread.
    assert customer.send_event(chat_id=chat["chat_id"], event={"type": "message", "text": "late"},
                               attach_to_last_thread=True).startswith(chat["thread_id"])
    resumed = customer.resume_chat(chat_id=chat["chat_id"], group_id=0, events=[{"type": "message", "text": "again"}])
    assert resumed["thread_id"] != chat["thread_id"] and resumed["event_ids"] == [f"{resumed['thread_id']}_1"]
    assert customer.get_chat(chat_id=chat["chat_id"])["thread"]["id"] == resumed["thread_id"]


def test_update_and_get_customer(customer):
    customer.update_customer(name="Ann Bot-User", email="ann@example.com", session_fields=[{"bot_user": "u-1"}])
    got = customer.get_customer()
    assert got["type"] == "customer" and got["name"] == "Ann Bot-User" and got["email"] == "ann@example.com"
    assert got["session_fields"] == [{"bot_user": "u-1"}]
    with pytest.raises(ValueError):
        customer.update_customer()


def test_upload_file_and_send_it(customer, sandbox):
    import requests

    url = customer.upload_file(filename="photo.png", content=b"\x89PNG fake", content_type="image/png")
    assert url.startswith(sandbox.url + "/files/") and url.endswith("/photo.png")
    assert requests.get(url, timeout=5).content == b"\x89PNG fake"
    chat = start(customer)
    customer.send_event(chat_id=chat["chat_id"], event={"type": "file", "url": url, "alternative_text": "a photo"})
    event = customer.get_chat(chat_id=chat["chat_id"])["thread"]["events"][-1]
    assert (event["type"], event["name"], event["size"], event["content_type"]) == ("file", "photo.png", 9, "image/png")


def test_upload_too_large(customer):
    with pytest.raises(LiveChatPermanentError) as caught:
        customer.upload_file(filename="big.bin", content=b"0" * (10 * 1024 * 1024 + 1), content_type="application/octet-stream")
    assert caught.value.type == "entity_too_large" and caught.value.status == 413


def test_config_from_settings(livechat_settings, sandbox, sandbox_org):
    from bridge.livechat import LiveChatConfig

    config = LiveChatConfig.from_settings(client_id=sandbox_org.client_id, organization_id=sandbox_org.organization_id,
                                          agent_token=sandbox_org.agent_token, redirect_uri=sandbox_org.redirect_uri)
    assert (config.api_url, config.accounts_url, config.api_version) == (sandbox.url, sandbox.url, "3.6")
    assert CustomerClient(config, CustomerIdentity()).get_customer()["type"] == "customer"


# ---- Agent and Configuration API ---------------------------------------------------------------
def test_agent_transfer_get_list_send_deactivate(customer, agent, sandbox, sandbox_org):
    chat = start(customer)
    agent.transfer_chat(chat_id=chat["chat_id"], group_ids=[5])
    assert sandbox.requests("transfer_chat")[0]["json"] == {
        "id": chat["chat_id"], "target": {"type": "group", "ids": [5]},
        "ignore_agents_availability": True, "ignore_requester_presence": True}
    got = agent.get_chat(chat_id=chat["chat_id"])
    assert got["access"]["group_ids"] == [5]
    agent.transfer_chat(chat_id=chat["chat_id"], agent_ids=["jane@example.com"])
    assert "jane@example.com" in [u["id"] for u in agent.get_chat(chat_id=chat["chat_id"])["users"]]
    event_id = agent.send_event(chat_id=chat["chat_id"], event={"type": "message", "text": "hi", "visibility": "all"})
    assert event_id.startswith(chat["thread_id"] + "_")
    listed = agent.list_chats(filters={"active": True, "group_ids": [5]}, limit=5)
    assert [c["id"] for c in listed["chats_summary"]] == [chat["chat_id"]] and listed["found_chats"] == 1
    agent.deactivate_chat(chat_id=chat["chat_id"])
    assert agent.list_chats(filters={"active": True})["chats_summary"] == []
    with pytest.raises(ValueError):
        agent.transfer_chat(chat_id=chat["chat_id"])


def test_groups(agent, livechat_config):
    assert [g["id"] for g in agent.list_groups()] == [0, 5]
    assert agent.get_group(group_id=5)["id"] == 5
    with pytest.raises(LiveChatPermanentError) as caught:
        ConfigurationClient(livechat_config).get_group(group_id=99)
    assert caught.value.type == "group_not_found"


def test_webhook_registration(livechat_config, sandbox_org):
    config = ConfigurationClient(livechat_config)
    config.enable_license_webhooks()
    webhook_id = config.register_webhook(url="https://console.example/webhooks/livechat/x/", action="incoming_event",
                                         secret_key="whsec", filters={"author_type": "agent"})
    [listed] = config.list_webhooks()
    assert listed["id"] == webhook_id and listed["owner_client_id"] == sandbox_org.client_id
    assert listed["filters"] == {"author_type": "agent"} and listed["type"] == "license"
    config.unregister_webhook(webhook_id=webhook_id)
    assert config.list_webhooks() == []
    with pytest.raises(LiveChatPermanentError):
        config.unregister_webhook(webhook_id=webhook_id)


def test_wrong_agent_token_is_auth_error(livechat_config):
    from dataclasses import replace

    with pytest.raises(LiveChatAuthError) as caught:
        AgentClient(replace(livechat_config, agent_token="bm9wZTpub3Bl")).list_chats()
    assert caught.value.status == 401


# ---- failures, retries and token renewal -----------------------------------------------------
def test_send_event_503_twice_then_succeeds_with_retry(customer, sandbox):
    chat = start(customer)
    sandbox.add_fault("send_event", count=2, error_type="service_unavailable", status=503)
    sleeps = []
    event_id = call_with_retry(
        lambda: customer.send_event(chat_id=chat["chat_id"], event={"type": "message", "text": "x"}),
        sleep=sleeps.append)
    assert event_id and len(sleeps) == 2
    assert [r["status"] for r in sandbox.requests("send_event")] == [503, 503, 200]


def test_too_many_requests_is_transient(customer, sandbox):
    sandbox.add_fault("get_customer", error_type="too_many_requests")
    with pytest.raises(LiveChatTransientError) as caught:
        customer.get_customer()
    assert (caught.value.type, caught.value.status) == ("too_many_requests", 429)


def test_slow_answer_is_transient_timeout(livechat_config, sandbox):
    from dataclasses import replace

    sandbox.add_fault("list_chats", delay=1.0)
    with pytest.raises(LiveChatTransientError) as caught:
        AgentClient(replace(livechat_config, timeout=0.3)).list_chats()
    assert caught.value.type == "timeout"


def test_unreachable_livechat_is_transient(livechat_config):
    from dataclasses import replace

    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = replace(livechat_config, api_url=f"http://127.0.0.1:{port}", accounts_url=f"http://127.0.0.1:{port}")
    with pytest.raises(LiveChatTransientError) as caught:
        CustomerClient(config, CustomerIdentity()).ensure_token()
    assert caught.value.type == "connection"


def test_expired_token_is_renewed_once_and_the_call_succeeds(customer, identity, sandbox):
    chat = start(customer)
    customer_id = identity.customer_id
    assert sandbox.expire_tokens(customer_id) == 1
    customer.send_event(chat_id=chat["chat_id"], event={"type": "message", "text": "after expiry"})
    assert identity.customer_id == customer_id
    assert len(token_requests(sandbox)) == 2
    assert [r["status"] for r in sandbox.requests("send_event")] == [401, 200]


def test_persistent_auth_failure_does_not_loop(customer, sandbox):
    chat = start(customer)
    sandbox.add_fault("send_event", count=10, error_type="authentication")
    with pytest.raises(LiveChatAuthError):
        customer.send_event(chat_id=chat["chat_id"], event={"type": "message", "text": "x"})
    assert len(token_requests(sandbox)) == 2  # the first token, one renewal
    assert len(sandbox.requests("send_event")) == 2  # the call, one retry


def test_token_endpoint_refusal_is_auth_error(livechat_config, sandbox):
    from dataclasses import replace

    with pytest.raises(LiveChatAuthError) as caught:
        CustomerClient(replace(livechat_config, client_id="unknown"), CustomerIdentity()).ensure_token()
    assert caught.value.status == 401 and caught.value.type == "authentication"


def test_token_endpoint_outage_is_transient(customer, sandbox):
    sandbox.add_fault("token", error_type="service_unavailable", status=503)
    with pytest.raises(LiveChatTransientError):
        customer.ensure_token()


# ---- logs --------------------------------------------------------------------------------------
def test_logs_never_contain_secrets(caplog, livechat_config, sandbox, sandbox_org):
    caplog.set_level(logging.DEBUG)  # root, so urllib3 and the sandbox are captured too
    identity = CustomerIdentity()
    customer = CustomerClient(livechat_config, identity)
    chat = start(customer)
    customer.send_event(chat_id=chat["chat_id"], event={"type": "message", "text": "hi"})
    sandbox.expire_tokens()
    customer.get_chat(chat_id=chat["chat_id"])  # 401 → renewal → retry
    sandbox.add_fault("get_customer", error_type="authentication", count=2)
    with pytest.raises(LiveChatAuthError):
        customer.get_customer()
    agent = AgentClient(livechat_config)
    agent.transfer_chat(chat_id=chat["chat_id"], group_ids=[5])
    with pytest.raises(LiveChatPermanentError):
        agent.get_chat(chat_id="NOSUCHCHAT")
    ConfigurationClient(livechat_config).register_webhook(url="https://x.example/", action="incoming_chat",
                                                          secret_key="webhook-secret-value")
    log_text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "livechat send_event status=200" in log_text
    secrets = [sandbox_org.pat, sandbox_org.agent_token, identity.access_token, "webhook-secret-value",
               *identity.cookies.values()]
    for secret in secrets:
        assert secret and secret not in log_text
    assert "Authorization" not in log_text
