"""The sandbox's own rules over raw HTTP: auth, error shapes, ids, limits, webhooks, control routes."""
import base64
import json
import re
import time
from pathlib import Path

import pytest
import requests

from bridge.livechat import ConfigurationClient, CustomerClient, CustomerIdentity

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "livechat"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def post(url, body=None, **headers):
    return requests.post(url, json=body if body is not None else {}, headers=headers, timeout=5)


def customer_token(sandbox, org, cookies=None):
    response = requests.post(f"{sandbox.url}/v2/customer/token", timeout=5, cookies=cookies, json={
        "grant_type": "cookie", "client_id": org.client_id, "organization_id": org.organization_id,
        "redirect_uri": org.redirect_uri, "response_type": "token"})
    assert response.status_code == 200, response.text
    return response


def customer_url(sandbox, org, method, version="3.6"):
    return f"{sandbox.url}/v{version}/customer/action/{method}?organization_id={org.organization_id}"


def start_chat(sandbox, org, token, text="help"):
    response = post(customer_url(sandbox, org, "start_chat"),
                    {"chat": {"access": {"group_ids": [0]}, "thread": {"events": [{"type": "message", "text": text}]}},
                     "active": True, "continuous": True}, Authorization=f"Bearer {token}")
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def token(sandbox, sandbox_org):
    return customer_token(sandbox, sandbox_org).json()["access_token"]


@pytest.fixture
def hooked(sandbox, sandbox_org, webhook_receiver, livechat_config):
    """The organization with license webhooks for every action we handle, registered like the console does."""
    config = ConfigurationClient(livechat_config)
    config.enable_license_webhooks()
    for action in ("incoming_chat", "incoming_event", "chat_deactivated", "chat_transferred", "user_added_to_chat"):
        config.register_webhook(url=webhook_receiver.url, action=action, secret_key="SECRET")
    return webhook_receiver


# ---- token endpoint -------------------------------------------------------------------------
def test_cookie_grant_answer_and_cookies(sandbox, sandbox_org):
    response = customer_token(sandbox, sandbox_org)
    body = response.json()
    assert body["access_token"].startswith("dal:") and body["token_type"] == "Bearer"
    assert body["expires_in"] == 28800 and body["organization_id"] == sandbox_org.organization_id
    assert UUID.match(body["entity_id"])
    assert set(response.cookies.keys()) == {"__lc_cid", "__lc_cst"}
    again = customer_token(sandbox, sandbox_org, cookies=dict(response.cookies))
    assert again.json()["entity_id"] == body["entity_id"]
    assert customer_token(sandbox, sandbox_org).json()["entity_id"] != body["entity_id"]


@pytest.mark.parametrize("change", [{"client_id": "nope"}, {"organization_id": "nope"}, {"redirect_uri": ""},
                                    {"grant_type": "password"}])
def test_token_refusals_are_oauth_401(sandbox, sandbox_org, change):
    body = {"grant_type": "cookie", "client_id": sandbox_org.client_id, "organization_id": sandbox_org.organization_id,
            "redirect_uri": "https://x/", "response_type": "token", **change}
    response = post(f"{sandbox.url}/v2/customer/token", body)
    assert response.status_code == 401
    assert set(response.json()) == {"oauth_exception", "exception_description"}


def test_one_client_id_in_two_organizations(sandbox, sandbox_org):
    from dataclasses import replace

    sandbox.add_organization("sandbox-org-2", sandbox_org.client_id, "other@example.com", "pat-2")
    other = replace(sandbox_org, organization_id="sandbox-org-2")
    first, second = customer_token(sandbox, sandbox_org).json(), customer_token(sandbox, other).json()
    assert (first["organization_id"], second["organization_id"]) == ("sandbox-org-1", "sandbox-org-2")


def test_agent_token_grant_needs_a_registered_oauth_token(sandbox, sandbox_org):
    body = {"grant_type": "agent_token", "client_id": sandbox_org.client_id, "response_type": "token"}
    assert post(f"{sandbox.url}/v2/customer/token", body, Authorization="Bearer wrong").status_code == 401
    assert post(f"{sandbox.url}/v2/customer/token", body,
                Authorization=f"Basic {sandbox_org.agent_token}").status_code == 401  # not with a PAT
    ok = post(f"{sandbox.url}/v2/customer/token", body, Authorization=f"Bearer {sandbox_org.agent_oauth_token}")
    assert ok.status_code == 200 and ok.json()["client_id"] == sandbox_org.client_id


def test_token_lifetime_setting(sandbox, sandbox_org):
    sandbox.configure(token_ttl=1)
    token = customer_token(sandbox, sandbox_org).json()["access_token"]
    time.sleep(1.1)
    response = post(customer_url(sandbox, sandbox_org, "get_customer"), Authorization=f"Bearer {token}")
    assert response.status_code == 401


# ---- auth rules and error shapes ------------------------------------------------------------
def test_customer_api_refuses_basic_pat(sandbox, sandbox_org):
    response = post(customer_url(sandbox, sandbox_org, "get_customer"), Authorization=f"Basic {sandbox_org.agent_token}")
    assert response.status_code == 401
    assert response.json() == {"error": {"type": "authentication", "message": "Invalid access token"}}


def test_agent_and_configuration_api_refuse_customer_token(sandbox, sandbox_org, token):
    for api, method in (("agent", "list_chats"), ("configuration", "list_groups")):
        response = post(f"{sandbox.url}/v3.6/{api}/action/{method}", Authorization=f"Bearer {token}")
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "authentication"


def test_expired_token_refused(sandbox, sandbox_org, token):
    url = customer_url(sandbox, sandbox_org, "get_customer")
    assert post(url, Authorization=f"Bearer {token}").status_code == 200
    assert requests.post(f"{sandbox.url}/_sandbox/tokens/expire", json={}, timeout=5).json() == {"expired": 1}
    response = post(url, Authorization=f"Bearer {token}")
    assert response.status_code == 401
    assert response.json() == {"error": {"type": "authentication", "message": "Invalid access token"}}


def test_customer_api_needs_organization_id(sandbox, sandbox_org, token):
    response = post(f"{sandbox.url}/v3.6/customer/action/get_customer", Authorization=f"Bearer {token}")
    assert response.status_code == 400 and response.json()["error"]["type"] == "validation"


def test_versions(sandbox, sandbox_org, token):
    assert post(customer_url(sandbox, sandbox_org, "get_customer", "3.5"), Authorization=f"Bearer {token}").ok
    response = post(customer_url(sandbox, sandbox_org, "get_customer", "2.0"), Authorization=f"Bearer {token}")
    assert response.status_code == 404 and response.json()["error"]["type"] == "not_found"


def test_ids_and_error_shapes(sandbox, sandbox_org, token):
    auth = {"Authorization": f"Bearer {token}"}
    chat = start_chat(sandbox, sandbox_org, token)
    assert re.fullmatch(r"[A-Z0-9]{10}", chat["chat_id"]) and re.fullmatch(r"[A-Z0-9]{8}", chat["thread_id"])
    assert chat["event_ids"] == [chat["thread_id"] + "_1"]

    too_long = post(customer_url(sandbox, sandbox_org, "send_event"),
                    {"chat_id": chat["chat_id"], "event": {"type": "message", "text": "x" * (16 * 1024 + 1)}}, **auth)
    assert too_long.status_code == 400 and too_long.json()["error"]["type"] == "validation"
    at_limit = post(customer_url(sandbox, sandbox_org, "send_event"),
                    {"chat_id": chat["chat_id"], "event": {"type": "message", "text": "x" * (16 * 1024)}}, **auth)
    assert at_limit.status_code == 200

    missing = post(customer_url(sandbox, sandbox_org, "get_chat"), {"chat_id": "AAAAAAAAAA"}, **auth)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
    bad_group = post(customer_url(sandbox, sandbox_org, "start_chat"), {"chat": {"access": {"group_ids": [42]}}}, **auth)
    assert bad_group.json()["error"]["type"] == "group_not_found"
    not_json = requests.post(customer_url(sandbox, sandbox_org, "send_event"), data=b"{nope", headers=auth, timeout=5)
    assert not_json.status_code == 400 and set(not_json.json()["error"]) == {"type", "message"}

    post(customer_url(sandbox, sandbox_org, "deactivate_chat"), {"id": chat["chat_id"]}, **auth)
    closed = post(customer_url(sandbox, sandbox_org, "send_event"),
                  {"chat_id": chat["chat_id"], "event": {"type": "message", "text": "hi"}}, **auth)
    assert closed.json()["error"]["type"] == "chat_inactive"


def test_another_customers_chat_is_not_found(sandbox, sandbox_org, token):
    chat = start_chat(sandbox, sandbox_org, token)
    other = customer_token(sandbox, sandbox_org).json()["access_token"]
    response = post(customer_url(sandbox, sandbox_org, "get_chat"), {"chat_id": chat["chat_id"]},
                    Authorization=f"Bearer {other}")
    assert response.status_code == 404


def test_customer_does_not_see_internal_notes(sandbox, sandbox_org, token):
    chat = start_chat(sandbox, sandbox_org, token)
    sandbox.note(chat["chat_id"], "smith@example.com", "VIP")
    response = post(customer_url(sandbox, sandbox_org, "get_chat"), {"chat_id": chat["chat_id"]},
                    Authorization=f"Bearer {token}")
    assert [e["text"] for e in response.json()["thread"]["events"]] == ["help"]
    assert [e["text"] for e in sandbox.chat(chat["chat_id"])["threads"][0]["events"]] == ["help", "VIP"]


def test_request_log_redacts_credentials(sandbox, sandbox_org, token, livechat_config):
    ConfigurationClient(livechat_config).register_webhook(url="https://x.example/", action="incoming_chat",
                                                          secret_key="very-secret")
    dump = json.dumps(requests.get(f"{sandbox.url}/_sandbox/requests", timeout=5).json())
    for secret in (token, sandbox_org.agent_token, "very-secret"):
        assert secret not in dump
    assert "Basic [REDACTED]" in dump


def test_webhook_registration_rules(livechat_config):
    from bridge.livechat import LiveChatPermanentError

    config = ConfigurationClient(livechat_config)
    with pytest.raises(LiveChatPermanentError):  # author_type only for incoming_event/event_updated
        config.register_webhook(url="https://x/", action="chat_deactivated", secret_key="s",
                                filters={"author_type": "agent"})
    for _ in range(3):
        config.register_webhook(url="https://x/", action="incoming_chat", secret_key="s")
    with pytest.raises(LiveChatPermanentError) as caught:
        config.register_webhook(url="https://x/", action="incoming_chat", secret_key="s")
    assert caught.value.type == "limit_reached"


# ---- webhooks ---------------------------------------------------------------------------------
def test_webhook_flow_and_envelopes(sandbox, sandbox_org, hooked):
    identity = CustomerIdentity()
    from bridge.livechat import LiveChatConfig

    config = LiveChatConfig(api_url=sandbox.url, accounts_url=sandbox.url, api_version="3.6",
                            client_id=sandbox_org.client_id, organization_id=sandbox_org.organization_id,
                            agent_token=sandbox_org.agent_token, redirect_uri="https://x/")
    client = CustomerClient(config, identity)
    chat = client.start_chat(group_id=0, events=[{"type": "message", "text": "help"}])
    chat_id, thread_id = chat["chat_id"], chat["thread_id"]
    client.send_event(chat_id=chat_id, event={"type": "message", "text": "anyone?"})
    sandbox.join(chat_id, "smith@example.com")
    sandbox.agent_message(chat_id, "smith@example.com", "Hi, John here")
    sandbox.note(chat_id, "smith@example.com", "internal")
    sandbox.agent_file(chat_id, "smith@example.com", name="a.png", url="https://cdn.example/a.png",
                       content_type="image/png", size=10)
    sandbox.rich_message(chat_id, "smith@example.com", title="Did it help?", buttons=["Yes", "No"])
    sandbox.system_message(chat_id, "Chat rated")
    sandbox.transfer(chat_id, group_id=5, queue_position=2, wait_time=30)
    sandbox.transfer(chat_id, agent_id="jane@example.com")
    sandbox.close(chat_id, agent_id="jane@example.com")
    assert sandbox.wait_for_webhooks(5)
    received = hooked.received
    assert [r["action"] for r in received] == [
        "incoming_chat", "incoming_event", "user_added_to_chat", "incoming_event", "incoming_event", "incoming_event",
        "incoming_event", "incoming_event", "chat_transferred", "chat_transferred", "user_added_to_chat",
        "chat_deactivated"]
    by_action = {}
    for envelope in received:
        assert set(envelope) == {"webhook_id", "secret_key", "action", "organization_id", "payload", "additional_data"}
        assert envelope["secret_key"] == "SECRET" and envelope["organization_id"] == sandbox_org.organization_id
        by_action.setdefault(envelope["action"], []).append(envelope["payload"])

    [incoming_chat] = by_action["incoming_chat"]
    assert incoming_chat["chat"]["id"] == chat_id and incoming_chat["chat"]["thread"]["id"] == thread_id
    assert incoming_chat["chat"]["thread"]["events"][0]["text"] == "help"

    events = [p["event"] for p in by_action["incoming_event"]]
    assert [(e["type"], e.get("author_id"), e["visibility"]) for e in events] == [
        ("message", identity.customer_id, "all"), ("message", "smith@example.com", "all"),
        ("message", "smith@example.com", "agents"), ("file", "smith@example.com", "all"),
        ("rich_message", "smith@example.com", "all"), ("system_message", None, "all")]
    assert all(p["chat_id"] == chat_id and p["thread_id"] == thread_id for p in by_action["incoming_event"])
    assert [e["id"] for e in events] == [f"{thread_id}_{n}" for n in range(2, 8)]

    joined = by_action["user_added_to_chat"]
    assert [p["user"]["id"] for p in joined] == ["smith@example.com", "jane@example.com"]
    assert joined[0]["user"]["name"] == "John Smith" and joined[0]["user_type"] == "agent"
    assert joined[0]["user"]["avatar"] == "https://cdn.example.com/smith.png"

    queued, to_agent = by_action["chat_transferred"]
    assert queued["transferred_to"] == {"group_ids": [5]} and queued["reason"] == "manual"
    assert queued["queue"]["position"] == 2 and queued["queue"]["wait_time"] == 30 and queued["thread_id"] == thread_id
    assert queued["requester_id"] == "smith@example.com"
    assert to_agent["transferred_to"] == {"agent_ids": ["jane@example.com"]} and "queue" not in to_agent

    assert by_action["chat_deactivated"] == [{"chat_id": chat_id, "thread_id": thread_id, "user_id": "jane@example.com"}]


def test_chat_deactivated_user_id(sandbox, sandbox_org, hooked, token):
    by_customer = start_chat(sandbox, sandbox_org, token)
    post(customer_url(sandbox, sandbox_org, "deactivate_chat"), {"id": by_customer["chat_id"]},
         Authorization=f"Bearer {token}")
    by_router = start_chat(sandbox, sandbox_org, customer_token(sandbox, sandbox_org).json()["access_token"])
    sandbox.close(by_router["chat_id"], router=True)
    sandbox.wait_for_webhooks(5)
    closes = [r["payload"] for r in hooked.received if r["action"] == "chat_deactivated"]
    customer_id = sandbox.chat(by_customer["chat_id"])["users"][0]["id"]
    assert closes == [{"chat_id": by_customer["chat_id"], "thread_id": by_customer["thread_id"], "user_id": customer_id},
                      {"chat_id": by_router["chat_id"], "thread_id": by_router["thread_id"]}]


def test_license_webhooks_need_enabling(sandbox, sandbox_org, webhook_receiver, livechat_config, token):
    config = ConfigurationClient(livechat_config)
    config.register_webhook(url=webhook_receiver.url, action="incoming_chat", secret_key="SECRET")
    start_chat(sandbox, sandbox_org, token)
    sandbox.wait_for_webhooks(5)
    assert webhook_receiver.received == []
    config.enable_license_webhooks()
    start_chat(sandbox, sandbox_org, token)
    assert webhook_receiver.wait_for(1)[0]["action"] == "incoming_chat"


def test_author_type_filter(sandbox, sandbox_org, webhook_receiver, livechat_config, token):
    config = ConfigurationClient(livechat_config)
    config.enable_license_webhooks()
    config.register_webhook(url=webhook_receiver.url, action="incoming_event", secret_key="SECRET",
                            filters={"author_type": "agent"})
    chat = start_chat(sandbox, sandbox_org, token)
    post(customer_url(sandbox, sandbox_org, "send_event"),
         {"chat_id": chat["chat_id"], "event": {"type": "message", "text": "from customer"}}, Authorization=f"Bearer {token}")
    sandbox.agent_message(chat["chat_id"], "smith@example.com", "from agent")
    sandbox.wait_for_webhooks(5)
    assert [r["payload"]["event"]["text"] for r in webhook_receiver.received] == ["from agent"]


def test_webhook_retried_after_500(sandbox, sandbox_org, hooked, token):
    hooked.statuses = [500]
    start_chat(sandbox, sandbox_org, token)
    received = hooked.wait_for(2)
    assert received[0] == received[1]
    assert sandbox.wait_for_webhooks(5)
    assert [(d["attempt"], d["status"], d["ok"]) for d in sandbox.webhook_deliveries()] == [(1, 500, False), (2, 200, True)]


def test_webhook_retried_when_receiver_is_slow(sandbox, sandbox_org, hooked, token):
    sandbox.configure(webhook_timeout=0.3)
    hooked.delay = 0.6
    start_chat(sandbox, sandbox_org, token)
    time.sleep(0.4)
    hooked.delay = 0
    assert sandbox.wait_for_webhooks(5)
    deliveries = sandbox.webhook_deliveries()
    assert deliveries[0]["error"] == "timeout" and deliveries[0]["status"] is None
    assert deliveries[-1]["ok"] and len(deliveries) >= 2


def test_webhook_gives_up_after_three_retries(sandbox, sandbox_org, hooked, token):
    hooked.statuses = [503] * 10
    start_chat(sandbox, sandbox_org, token)
    assert sandbox.wait_for_webhooks(5)
    assert [d["attempt"] for d in sandbox.webhook_deliveries()] == [1, 2, 3, 4]


def test_webhook_copies(sandbox, sandbox_org, hooked, token):
    requests.post(f"{sandbox.url}/_sandbox/settings", json={"webhook_copies": 3}, timeout=5).raise_for_status()
    start_chat(sandbox, sandbox_org, token)
    received = hooked.wait_for(3)
    assert sandbox.wait_for_webhooks(5)
    assert len(hooked.received) == 3 and received[0] == received[1] == received[2]


def test_static_webhooks_get_every_action(sandbox, sandbox_org, webhook_receiver, token):
    requests.post(f"{sandbox.url}/_sandbox/webhooks", json={"url": webhook_receiver.url, "secret_key": "S"},
                  timeout=5).raise_for_status()
    chat = start_chat(sandbox, sandbox_org, token)
    sandbox.transfer(chat["chat_id"], group_id=5)
    sandbox.wait_for_webhooks(5)
    assert webhook_receiver.actions() == ["incoming_chat", "chat_access_updated", "chat_transferred"]
    assert webhook_receiver.received[0]["webhook_id"] == "static1"


def test_server_webhook_urls_survive_reset(webhook_receiver):
    from bridge.livechat.sandbox import SandboxServer

    with SandboxServer(webhook_urls=[webhook_receiver.url], webhook_secret="S", webhook_retry_delays=()) as server:
        server.reset()
        server.add_organization("o", "c", "a", "p")
        token = requests.post(f"{server.url}/v2/customer/token", timeout=5, json={
            "grant_type": "cookie", "client_id": "c", "organization_id": "o", "redirect_uri": "https://x/"}).json()
        requests.post(f"{server.url}/v3.6/customer/action/start_chat?organization_id=o", json={}, timeout=5,
                      headers={"Authorization": f"Bearer {token['access_token']}"}).raise_for_status()
        assert server.wait_for_webhooks(5)
    [envelope] = webhook_receiver.received
    assert (envelope["action"], envelope["secret_key"], envelope["organization_id"]) == ("incoming_chat", "S", "o")


def test_webhooks_in_order_per_chat(sandbox, sandbox_org, hooked, token):
    chat = start_chat(sandbox, sandbox_org, token)
    for n in range(15):
        sandbox.agent_message(chat["chat_id"], "smith@example.com", f"m{n}")
    sandbox.wait_for_webhooks(5)
    texts = [r["payload"]["event"]["text"] for r in hooked.received if r["action"] == "incoming_event"]
    assert texts == [f"m{n}" for n in range(15)]


# ---- fixtures match what the sandbox sends -----------------------------------------------------
FIXTURE_NAMES = sorted(p.stem for p in FIXTURES.glob("*.json"))


def test_one_fixture_per_action_and_event_type():
    assert FIXTURE_NAMES == sorted([
        "incoming_event_message", "incoming_event_file", "incoming_event_rich_message", "incoming_event_system_message",
        "incoming_event_internal_note", "incoming_event_filled_form", "incoming_event_custom", "chat_deactivated",
        "chat_deactivated_by_router", "chat_transferred", "chat_transferred_queued", "user_added_to_chat",
        "incoming_chat", "chat_access_updated"])
    for name in FIXTURE_NAMES:
        envelope = json.loads((FIXTURES / f"{name}.json").read_text())
        assert set(envelope) == {"webhook_id", "secret_key", "action", "organization_id", "payload", "additional_data"}
        assert envelope["secret_key"] == "SECRET" and name.startswith(envelope["action"])


def test_sandbox_payloads_have_the_fixture_keys(sandbox, sandbox_org, webhook_receiver, token):
    sandbox.add_webhook(webhook_receiver.url, "SECRET")
    chat = start_chat(sandbox, sandbox_org, token)
    chat_id = chat["chat_id"]
    sandbox.agent_message(chat_id, "smith@example.com", "hi")
    sandbox.transfer(chat_id, group_id=5, queue_position=1, wait_time=5)
    sandbox.close(chat_id, agent_id="smith@example.com")
    sandbox.wait_for_webhooks(5)
    sent = {}
    for envelope in webhook_receiver.received:
        sent.setdefault(envelope["action"], envelope["payload"])
    for name in ("incoming_event_message", "chat_transferred_queued", "user_added_to_chat", "incoming_chat",
                 "chat_access_updated", "chat_deactivated"):
        fixture = json.loads((FIXTURES / f"{name}.json").read_text())
        payload = sent[fixture["action"]]
        assert set(payload) == set(fixture["payload"]), name
        if "event" in payload:
            assert {"id", "created_at", "type", "text", "author_id", "visibility"} <= set(payload["event"])


# ---- control routes and the agent page ---------------------------------------------------------
def test_control_routes_over_http(sandbox, sandbox_org, token):
    chat = start_chat(sandbox, sandbox_org, token)
    base = f"{sandbox.url}/_sandbox/chats/{chat['chat_id']}"
    for op, body in (("join", {"agent_id": "smith@example.com"}), ("message", {"agent_id": "smith@example.com", "text": "hi"}),
                     ("file", {"agent_id": "smith@example.com", "name": "a.pdf", "url": "https://x/a.pdf",
                               "content_type": "application/pdf", "size": 3}),
                     ("rich_message", {"agent_id": "smith@example.com"}), ("note", {"agent_id": "smith@example.com", "text": "n"}),
                     ("system_message", {"text": "s"}), ("transfer", {"agent_id": "jane@example.com"}),
                     ("close", {"router": True})):
        response = requests.post(f"{base}/{op}", json=body, timeout=5)
        assert response.status_code == 200, (op, response.text)
    detail = requests.get(base, timeout=5).json()
    assert detail["active"] is False
    assert [e["type"] for e in detail["threads"][0]["events"]] == [
        "message", "message", "file", "rich_message", "message", "system_message"]
    [summary] = requests.get(f"{sandbox.url}/_sandbox/chats", timeout=5).json()
    assert summary["id"] == chat["chat_id"] and summary["active"] is False
    bad = requests.post(f"{base}/message", json={"agent_id": "smith@example.com", "txt": "typo"}, timeout=5)
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "validation"


def test_fault_delay_and_reset_routes(sandbox, sandbox_org, token):
    requests.post(f"{sandbox.url}/_sandbox/faults", json={"method": "get_customer", "delay": 0.3}, timeout=5).raise_for_status()
    started = time.monotonic()
    assert post(customer_url(sandbox, sandbox_org, "get_customer"), Authorization=f"Bearer {token}").ok
    assert time.monotonic() - started >= 0.3
    requests.post(f"{sandbox.url}/_sandbox/reset", json={}, timeout=5).raise_for_status()
    assert requests.get(f"{sandbox.url}/_sandbox/requests", timeout=5).json() == []
    assert post(customer_url(sandbox, sandbox_org, "get_customer"), Authorization=f"Bearer {token}").status_code == 401


def test_organizations_route(sandbox):
    response = requests.post(f"{sandbox.url}/_sandbox/organizations", timeout=5, json={
        "organization_id": "o2", "client_id": "c2", "account_id": "acc", "pat": "p", "group_ids": [0, 7]})
    assert response.json() == {"agent_token": base64.b64encode(b"acc:p").decode()}


def test_agent_page(sandbox, sandbox_org, token, hooked):
    chat = start_chat(sandbox, sandbox_org, token, text="please <b>help</b>")
    listing = requests.get(f"{sandbox.url}/agent/", timeout=5)
    assert listing.status_code == 200 and chat["chat_id"] in listing.text and "http-equiv=\"refresh\"" in listing.text
    assert requests.get(f"{sandbox.url}/", timeout=5).text == listing.text
    page = requests.get(f"{sandbox.url}/agent/chats/{chat['chat_id']}", timeout=5).text
    assert "please &lt;b&gt;help&lt;/b&gt;" in page and "<b>help</b>" not in page
    assert "cdn" not in page.split("<body>")[0]  # no CDN assets

    session = requests.Session()
    base = f"{sandbox.url}/agent/chats/{chat['chat_id']}"
    for op, form in (("join", {"agent_id": "smith@example.com"}),
                     ("message", {"agent_id": "smith@example.com", "text": "Hello from the page"}),
                     ("note", {"agent_id": "smith@example.com", "text": "note"}),
                     ("file", {"agent_id": "smith@example.com", "name": "x.png", "url": "https://x/x.png",
                               "content_type": "image/png", "size": "12"}),
                     ("transfer", {"target": "group:5", "queue_position": "3", "wait_time": "60"}),
                     ("close", {"agent_id": "smith@example.com"})):
        response = session.post(f"{base}/{op}", data=form, allow_redirects=False, timeout=5)
        assert response.status_code == 303 and response.headers["Location"] == f"/agent/chats/{chat['chat_id']}", op
    assert "Hello from the page" in session.get(base, timeout=5).text
    error = session.post(f"{base}/message", data={"agent_id": "smith@example.com", "text": "closed now"}, timeout=5)
    assert error.status_code == 400 and "inactive" in error.text
    sandbox.wait_for_webhooks(5)
    transferred = [r["payload"] for r in hooked.received if r["action"] == "chat_transferred"]
    assert transferred[0]["queue"]["position"] == 3
