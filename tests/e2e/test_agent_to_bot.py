"""Agent → bot, end to end over real HTTP: the LiveChat sandbox's agent acts, the sandbox sends
its webhooks to a live console, and the console calls a bot receiver back, signed.

Tasks run inline (right after commit, in the request thread), so once the sandbox has finished
sending its webhooks, the callbacks they caused have been tried too. Retries are driven with
`kick_due_deliveries()` on a zero-second schedule.
"""
import json

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from bridge.models import Delivery, HitlSession, Message, SessionEvent, WebhookReceipt
from bridge.services.callbacks import kick_due_deliveries
from tests.conftest import make_integration
from tests.webhooks.helpers import start_sandbox_handoff
from tests.webhooks.receiver import bot_receiver  # noqa: F401 (fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SECRET = "lc-webhook-secret-e2e-7d1c"
SMITH, JANE = "smith@example.com", "jane@example.com"


class Handoff:
    def __init__(self, *, sandbox, integration, session, receiver):
        self.sandbox, self.integration, self.session, self.receiver = sandbox, integration, session, receiver

    @property
    def chat_id(self):
        return self.session.chat_id

    def agent(self, op, **body):
        """An agent action through the sandbox's control routes; returns once the webhooks it
        caused were delivered to the console (and so the callbacks they caused were tried)."""
        response = requests.post(f"{self.sandbox.url}/_sandbox/chats/{self.chat_id}/{op}", json=body, timeout=10)
        assert response.status_code == 200, response.text
        self.settle()
        return response.json()

    def settle(self):
        assert self.sandbox.wait_for_webhooks(20), "the sandbox still has webhooks in flight"

    def verified(self):
        """Every callback the bot received, signature-checked with a Standard Webhooks verifier."""
        verifier = Webhook(self.integration.callback_secret)
        return [verifier.verify(r.body, r.headers) for r in self.receiver.received()]

    def of_type(self, type_):
        return [p for p in self.verified() if p["type"] == type_]


@pytest.fixture
def handoff(live_server, sandbox, sandbox_org, bot_receiver, settings):  # noqa: F811
    settings.CALLBACK_RETRY_SCHEDULE = [0, 0, 0, 0]
    integration = make_integration(
        "acme", "main",
        client_id=sandbox_org.client_id, organization_id=sandbox_org.organization_id,
        agent_token=sandbox_org.agent_token, group_id=0,
        webhook_secret=SECRET, callback_url=bot_receiver.url,
    ).integration
    session = start_sandbox_handoff(integration=integration, sandbox_org=sandbox_org, sandbox=sandbox)
    # LiveChat → console: every action of the organization, to the integration's webhook URL.
    sandbox.add_webhook(live_server.url + integration.webhook_path, SECRET)
    return Handoff(sandbox=sandbox, integration=integration, session=session, receiver=bot_receiver)


def test_an_agent_message_reaches_the_bot_signed(handoff):
    handoff.agent("message", agent_id=SMITH, text="Hi, I'm John. How can I help?")
    callbacks = handoff.verified()  # raises if any signature does not verify
    assert [c["type"] for c in callbacks] == ["session.assigned", "agent.message"]
    message = callbacks[1]["data"]["message"]
    assert message["text"] == "Hi, I'm John. How can I help?"
    assert message["agent"] == {"id": SMITH, "name": "John Smith"}
    assert callbacks[1]["data"]["session_id"] == str(handoff.session.pk)
    assert callbacks[1]["data"]["conversation_id"] == "conv-e2e"
    # The polling endpoint's rows: the agent's message, to the bot, not internal.
    row = Message.objects.get(direction="to_bot")
    assert (row.id, row.internal, row.author) == (message["id"], False, "agent")
    # And the header id is the payload id on every callback.
    assert [r.webhook_id for r in handoff.receiver.received()] == [c["id"] for c in callbacks]


def test_a_forged_signature_would_not_verify(handoff):
    handoff.agent("message", agent_id=SMITH, text="hello")
    request = handoff.receiver.received()[-1]
    tampered = request.body.replace(b"hello", b"HELLO")
    with pytest.raises(Exception):
        Webhook(handoff.integration.callback_secret).verify(tampered, request.headers)


def test_the_same_webhook_three_times_is_one_row_and_one_callback(handoff):
    handoff.sandbox.configure(webhook_copies=3)
    handoff.agent("message", agent_id=SMITH, text="Only once, please")
    copies = handoff.sandbox.webhook_deliveries("incoming_event")
    assert len(copies) == 3 and all(c["status"] == 200 for c in copies)
    assert Message.objects.filter(direction="to_bot").count() == 1
    messages = handoff.of_type("agent.message")
    assert len(messages) == 1
    assert len({r.webhook_id for r in handoff.receiver.received()}) == len(handoff.receiver.received())
    assert len(handoff.of_type("session.assigned")) == 1  # the join came three times too


def test_a_wrong_secret_is_401_and_stores_nothing(handoff, live_server):
    # Posted by hand, the way a forger would.
    envelope = {"webhook_id": "w1", "secret_key": "not-the-secret", "action": "incoming_event",
                "organization_id": handoff.integration.organization_id,
                "payload": {"chat_id": handoff.chat_id, "thread_id": handoff.session.thread_id,
                            "event": {"id": "X_1", "type": "message", "text": "forged", "author_id": SMITH}}}
    url = live_server.url + handoff.integration.webhook_path
    response = requests.post(url, json=envelope, timeout=10)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    malformed = requests.post(url, data=b'{"secret_key": "' + SECRET.encode() + b'", "action": ',
                              headers={"Content-Type": "application/json"}, timeout=10)
    assert malformed.status_code == 400
    assert malformed.json()["error"]["type"] == "validation_error"
    assert WebhookReceipt.objects.count() == 0
    assert Message.objects.filter(direction="to_bot").count() == 0
    assert Delivery.objects.count() == 0
    assert handoff.receiver.received() == []


def test_the_sandbox_with_a_wrong_secret_gets_401s(live_server, sandbox, sandbox_org, bot_receiver):  # noqa: F811
    integration = make_integration(
        "acme", "main", client_id=sandbox_org.client_id, organization_id=sandbox_org.organization_id,
        agent_token=sandbox_org.agent_token, group_id=0, webhook_secret=SECRET, callback_url=bot_receiver.url,
    ).integration
    session = start_sandbox_handoff(integration=integration, sandbox_org=sandbox_org, sandbox=sandbox)
    sandbox.add_webhook(live_server.url + integration.webhook_path, "stolen-or-stale-secret")
    sandbox.agent_message(session.chat_id, SMITH, "hello")
    assert sandbox.wait_for_webhooks(20)
    statuses = {d["status"] for d in sandbox.webhook_deliveries()}
    assert statuses == {401}
    assert WebhookReceipt.objects.count() == 0
    assert SessionEvent.objects.filter(session=session).count() == 0
    assert bot_receiver.received() == []


def test_an_internal_note_and_a_system_message_are_audit_only(handoff):
    handoff.agent("join", agent_id=SMITH)
    handoff.agent("note", agent_id=SMITH, text="VIP customer, be nice")
    handoff.agent("system_message", text="Chat rated good", system_message_type="rating.chat_rated")
    assert [c["type"] for c in handoff.verified()] == ["session.assigned"]
    assert "VIP customer" not in json.dumps(handoff.verified())
    assert Message.objects.filter(direction="to_bot").count() == 0
    kinds = set(SessionEvent.objects.filter(session=handoff.session).values_list("kind", flat=True))
    assert {"note", "system_message"} <= kinds


def test_a_file_reaches_the_bot_with_its_url(handoff):
    url = "https://cdn.livechat-files.com/api/file/lc/att/1/receipt.pdf"
    handoff.agent("file", agent_id=SMITH, name="receipt.pdf", url=url, content_type="application/pdf", size=2048)
    [callback] = handoff.of_type("agent.message")
    message = callback["data"]["message"]
    assert (message["type"], message["url"], message["text"]) == ("file", url, "receipt.pdf")
    assert message["file"]["size"] == 2048
    assert message["file"]["content_type"] == "application/pdf"


def test_a_rich_message_reaches_the_bot_as_text_and_elements(handoff):
    handoff.agent("rich_message", agent_id=SMITH, title="Solved?", buttons=["Yes", "No"])
    message = handoff.of_type("agent.message")[0]["data"]["message"]
    assert message["type"] == "rich"
    assert message["text"] == "Solved?\n[Yes] | [No]"
    assert [b["text"] for b in message["rich"]["elements"][0]["buttons"]] == ["Yes", "No"]


def test_join_assigns_with_the_agents_name(handoff):
    handoff.agent("join", agent_id=SMITH)
    [callback] = handoff.of_type("session.assigned")
    assert callback["data"]["agent"] == {
        "id": SMITH, "name": "John Smith", "avatar": "https://cdn.example.com/smith.png",
    }
    session = HitlSession.objects.get(pk=handoff.session.pk)
    assert (session.status, session.agent_name) == ("assigned", "John Smith")
    handoff.agent("join", agent_id=SMITH)  # already in the chat: nothing new
    assert len(handoff.of_type("session.assigned")) == 1


def test_a_queued_transfer_reaches_the_bot_with_the_queue_position(handoff):
    handoff.agent("join", agent_id=SMITH)
    handoff.agent("transfer", group_id=5, queue_position=3, wait_time=90)
    [callback] = handoff.of_type("session.transferred")
    data = callback["data"]
    assert data["queue"]["position"] == 3
    assert data["queue"]["wait_time"] == 90
    assert data["to"] == {"agent_ids": [], "group_ids": [5]}
    assert data["from"] == {"agent_ids": [SMITH], "group_ids": [0]}
    session = HitlSession.objects.get(pk=handoff.session.pk)
    assert session.is_open and session.status == "waiting"
    # Jane picks it up from the queue.
    handoff.agent("message", agent_id=JANE, text="Jane here")
    assert [c["type"] for c in handoff.verified()][-2:] == ["session.assigned", "agent.message"]
    assert handoff.of_type("agent.message")[-1]["data"]["message"]["agent"] == {"id": JANE, "name": "Jane Doe"}


def test_close_reaches_the_bot_and_closes_the_session(handoff):
    handoff.agent("message", agent_id=SMITH, text="Bye!")
    handoff.agent("close", agent_id=SMITH)
    [callback] = handoff.of_type("session.closed")
    assert callback["data"]["closed_by"] == SMITH
    session = HitlSession.objects.get(pk=handoff.session.pk)
    assert (session.status, session.closed_by) == ("closed", SMITH)
    assert [c["type"] for c in handoff.verified()] == ["session.assigned", "agent.message", "session.closed"]


def test_the_router_closing_is_closed_by_router(handoff):
    handoff.agent("close", router=True)
    assert handoff.of_type("session.closed")[0]["data"]["closed_by"] == "router"


def test_a_failing_bot_gets_it_on_the_fourth_try_and_the_next_one_after(handoff):
    handoff.agent("join", agent_id=SMITH)  # session.assigned, delivered
    handoff.receiver.fail_next(3, status=500)
    handoff.agent("message", agent_id=SMITH, text="first")  # try 1 → 500
    handoff.agent("message", agent_id=SMITH, text="second")  # waits behind it (try 2 of "first" → 500)
    kick_due_deliveries()  # try 3 → 500
    first = Delivery.objects.get(type="agent.message", payload__data__message__text="first")
    second = Delivery.objects.get(type="agent.message", payload__data__message__text="second")
    assert (first.state, first.attempts) == ("pending", 3)
    assert (second.state, second.attempts) == ("pending", 0)
    kick_due_deliveries()  # try 4 → 200, then "second" right after
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, first.attempts, second.state) == ("delivered", 4, "delivered")

    ids = [r.webhook_id for r in handoff.receiver.received()]
    assert ids[1:] == [first.event_id] * 4 + [second.event_id]
    texts = [c["data"]["message"]["text"] for c in handoff.of_type("agent.message")]
    assert texts == ["first"] * 4 + ["second"]
    assert [a.status_code for a in first.attempt_log.all()] == [500, 500, 500, 200]


def test_twenty_fast_messages_arrive_in_order(handoff):
    texts = [f"message {i:02d}" for i in range(20)]
    for text in texts:  # no waiting in between: the sandbox queues the webhooks
        response = requests.post(f"{handoff.sandbox.url}/_sandbox/chats/{handoff.chat_id}/message",
                                 json={"agent_id": SMITH, "text": text}, timeout=10)
        assert response.status_code == 200
    handoff.settle()
    received = [c["data"]["message"]["text"] for c in handoff.of_type("agent.message")]
    assert received == texts
    assert list(Message.objects.filter(direction="to_bot").order_by("id").values_list("text", flat=True)) == texts


def test_the_whole_loop_through_the_bot_api(
    live_server, sandbox, sandbox_org, bot_receiver, livechat_settings  # noqa: F811
):
    """The bot starts the handoff with POST /api/v1/sessions, gets the agent's reply both as a
    signed callback and by polling, and cannot write to the session once the agent closed it."""
    livechat_settings.CALLBACK_RETRY_SCHEDULE = [0, 0, 0, 0]
    bundle = make_integration(
        "acme", "main",
        client_id=sandbox_org.client_id, organization_id=sandbox_org.organization_id,
        agent_token=sandbox_org.agent_token, group_id=0, webhook_secret=SECRET, callback_url=bot_receiver.url,
    )
    integration = bundle.integration
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {bundle.api_key}"
    base = f"{live_server.url}/api/v1"

    started = api.post(f"{base}/sessions", json={
        "conversation_id": "conv-api", "user": {"external_id": "u-api", "name": "Ada Lovelace"},
        "title": "Refund", "transcript": [{"author": "user", "text": "I want a refund"}],
    }, timeout=30)
    assert started.status_code == 201, started.text
    session_id = started.json()["id"]
    assert sandbox.wait_for_webhooks(20)  # LiveChat's incoming_chat went nowhere yet
    sandbox.add_webhook(live_server.url + integration.webhook_path, SECRET)
    chat_id = started.json()["livechat_chat_id"]

    sandbox.agent_message(chat_id, SMITH, "Hi Ada, I can help with that.")
    assert sandbox.wait_for_webhooks(20)
    verifier = Webhook(integration.callback_secret)
    callbacks = [verifier.verify(r.body, r.headers) for r in bot_receiver.received()]
    assert [c["type"] for c in callbacks] == ["session.started", "session.assigned", "agent.message"]
    pushed = callbacks[-1]["data"]["message"]

    polled = api.get(f"{base}/sessions/{session_id}/messages", timeout=10).json()["results"]
    from_agent = [m for m in polled if m["direction"] == "to_bot"]
    assert [m["id"] for m in from_agent] == [pushed["id"]]
    assert from_agent[0]["text"] == pushed["text"] == "Hi Ada, I can help with that."
    assert from_agent[0]["agent"] == {"id": SMITH, "name": "John Smith"}
    newer = api.get(f"{base}/sessions/{session_id}/messages", params={"after": pushed["id"]}, timeout=10)
    assert newer.json()["results"] == []

    sandbox.close(chat_id, SMITH)
    assert sandbox.wait_for_webhooks(20)
    assert api.get(f"{base}/sessions/{session_id}", timeout=10).json()["status"] == "closed"
    closed = [verifier.verify(r.body, r.headers) for r in bot_receiver.received()][-1]
    assert (closed["type"], closed["data"]["closed_by"]) == ("session.closed", SMITH)
    refused = api.post(f"{base}/sessions/{session_id}/messages", json={"type": "text", "text": "hello?"}, timeout=10)
    assert refused.status_code == 409
    assert refused.json()["error"]["type"] == "conflict"
