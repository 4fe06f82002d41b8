"""No answer of the console carries a secret: a bot's whole conversation with the API (users,
sessions start/get/messages/list/stop, every kind of error), the webhook's answers and the
callbacks the bot receives are searched, bodies and headers, for the integration's secrets (webhook
secret, agent token and its PAT, callback secret, API key), the end user's LiveChat customer token
and cookies as stored after a real start through the sandbox, the encryption keys, and anything
shaped like a token or key."""
import base64
import json
import re

import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from bridge.models import EndUser
from bridge.services import sessions as sessions_service
from tests.api.conftest import Bot, MediaServer
from tests.conftest import make_integration
from tests.webhooks.helpers import fixture, post_webhook
from tests.webhooks.receiver import BotReceiver

pytestmark = pytest.mark.django_db(transaction=True)

SHAPES = [
    re.compile(r"(?<![A-Za-z0-9])dal:[A-Za-z0-9_\-.]{8,}"),
    re.compile(r"whsec_[A-Za-z0-9+/=]{8,}"),
    re.compile(r"hitl_[0-9a-f]{12}_[A-Za-z0-9_\-]{8,}"),
]


class Recorder:
    """Every answer the bot (or LiveChat) got, by a label saying what was asked."""

    def __init__(self):
        self.answers = []

    def add(self, label, response):
        headers = "\n".join(f"{name}: {value}" for name, value in response.items())
        body = b"".join(response.streaming_content) if response.streaming else response.content
        self.answers.append((label, response.status_code, headers, body.decode("utf-8", "replace")))
        return response


@pytest.fixture
def receiver():
    receiver = BotReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def media_server():
    server = MediaServer()
    yield server
    server.stop()


@pytest.fixture
def world(livechat_settings, sandbox, sandbox_org, settings, receiver, monkeypatch):
    settings.LIVECHAT_RETRY_SCHEDULE = [0, 0, 0]
    settings.CALLBACK_RETRY_SCHEDULE = [0]
    monkeypatch.setattr(sessions_service, "LIVECHAT_BUDGET_SECONDS", 1.0)
    bot = Bot(make_integration(
        "acme", "main", client_id=sandbox_org.client_id, organization_id=sandbox_org.organization_id,
        agent_token=sandbox_org.agent_token, group_id=5, webhook_secret="whs-acme-walk-5e3c1a",
        callback_url=receiver.url,
    ))
    outsider = Bot(make_integration("globex", "main", webhook_secret="whs-globex-walk-77b2"))
    return bot, outsider


def walk(bot, outsider, sandbox, media_server, settings) -> Recorder:
    """The API, end to end, as a bot would use (and misuse) it."""
    seen = Recorder()

    def post(label, *args, **kwargs):
        return seen.add(label, bot.post(*args, **kwargs))

    def get(label, *args, **kwargs):
        return seen.add(label, bot.get(*args, **kwargs))

    get("integration", "integration")
    post("user created", "users", {"external_id": "u-1", "name": "Ada", "email": "ada@example.com"})
    post("user updated", "users", {"external_id": "u-1", "name": "Ada L."})
    post("user invalid", "users", {"external_id": ""})
    started = post("session started", "sessions", {
        "conversation_id": "conv-1", "user": {"external_id": "u-1"}, "title": "Refund",
        "transcript": [{"author": "user", "text": "hello"}], "metadata": {"plan": "pro"},
    }, HTTP_IDEMPOTENCY_KEY="start-1")
    assert started.status_code == 201, started.content
    session_id = started.json()["id"]
    post("session start replayed", "sessions", {
        "conversation_id": "conv-1", "user": {"external_id": "u-1"}, "title": "Refund",
        "transcript": [{"author": "user", "text": "hello"}], "metadata": {"plan": "pro"},
    }, HTTP_IDEMPOTENCY_KEY="start-1")
    post("idempotency key reused", "sessions", {"conversation_id": "other", "user": {"external_id": "u-1"}},
         HTTP_IDEMPOTENCY_KEY="start-1")
    post("session conflict", "sessions", {"conversation_id": "conv-1", "user": {"external_id": "u-1"}})
    post("session unknown user", "sessions", {"conversation_id": "conv-2", "user_id": 999999})
    post("session invalid", "sessions", {"conversation_id": "conv-3"})
    get("session", f"sessions/{session_id}")
    get("session unknown", "sessions/7d4f5a8e-3c1b-4b55-9d6e-0f5a2c1e9b10")
    post("message", f"sessions/{session_id}/messages", {"type": "text", "text": "hi", "external_id": "m-1"})
    post("message again", f"sessions/{session_id}/messages", {"type": "text", "text": "hi", "external_id": "m-1"})
    post("message image", f"sessions/{session_id}/messages",
         {"type": "image", "url": media_server.serve("/a.png", b"\x89PNG" + b"\x00" * 32, "image/png")})
    post("message bad", f"sessions/{session_id}/messages", {"type": "image"})

    # An agent answers (the webhook LiveChat would send), so the transcript has every kind of row.
    chat = started.json()["livechat_chat_id"]
    thread = sandbox.chat(chat)["threads"][-1]["id"]
    for name, event_id in (("user_added_to_chat", None), ("incoming_event_message", f"{thread}_90")):
        envelope = fixture(name, secret="whs-acme-walk-5e3c1a")
        envelope["payload"].update(chat_id=chat, thread_id=thread)
        if event_id:
            envelope["payload"]["event"]["id"] = event_id
        seen.add(f"webhook {name}", post_webhook(bot.client, bot.integration, envelope))
    seen.add("webhook wrong secret",
             post_webhook(bot.client, bot.integration, fixture("chat_deactivated", secret="wrong")))
    seen.add("webhook malformed", post_webhook(bot.client, bot.integration, b"{"))

    get("messages", f"sessions/{session_id}/messages")
    get("messages after", f"sessions/{session_id}/messages", after=1, limit=1)
    get("messages bad query", f"sessions/{session_id}/messages", limit="lots")
    post("stop", f"sessions/{session_id}/stop", {"reason": "done"})
    post("stop again", f"sessions/{session_id}/stop", {})
    post("message to closed", f"sessions/{session_id}/messages", {"type": "text", "text": "late"})

    for label, path in (("outsider session", f"sessions/{session_id}"),
                        ("outsider messages", f"sessions/{session_id}/messages")):
        seen.add(label, outsider.get(path))
    seen.add("outsider stop", outsider.post(f"sessions/{session_id}/stop", {}))
    anonymous = APIClient()
    seen.add("no key", anonymous.get("/api/v1/integration"))
    seen.add("wrong key", anonymous.get("/api/v1/integration", HTTP_AUTHORIZATION=f"Bearer {bot.bundle.api_key}x"))
    seen.add("basic auth", anonymous.get("/api/v1/integration",
                                         HTTP_AUTHORIZATION=f"Basic {bot.integration.agent_token}"))
    seen.add("unknown path", bot.client.get("/api/v1/nope"))
    seen.add("wrong method", bot.client.get("/api/v1/users"))
    seen.add("not json", bot.client.post("/api/v1/users", "x=1", content_type="text/plain"))
    seen.add("malformed json", bot.client.post("/api/v1/users", "{", content_type="application/json"))
    seen.add("too big", bot.client.post("/api/v1/users", "x" * (django_settings.MAX_REQUEST_BODY_BYTES + 1),
                                        content_type="application/json"))
    seen.add("schema", bot.client.get("/api/v1/schema/"))
    seen.add("docs", bot.client.get("/api/v1/docs/"))

    sandbox.add_fault("start_chat", count=50, error_type="service_unavailable")
    post("livechat down", "sessions", {"conversation_id": "conv-down", "user": {"external_id": "u-1"}})
    sandbox.state.faults.clear()
    settings.API_RATE_LIMIT = "1/min"
    get("rate limit 1", "integration")
    get("rate limited", "integration")
    return seen


def secrets_of(bot, sandbox_org, end_user):
    cookies = json.loads(end_user.customer_cookies)
    values = {
        "webhook secret": bot.integration.webhook_secret,
        "agent token": bot.integration.agent_token,
        "personal access token": base64.b64decode(bot.integration.agent_token).decode().partition(":")[2],
        "callback secret": bot.integration.callback_secret,
        "callback secret key": bot.integration.callback_secret.removeprefix("whsec_"),
        "API key": bot.bundle.api_key,
        "customer token": end_user.customer_token,
        "agent OAuth token": sandbox_org.agent_oauth_token,
        "Django SECRET_KEY": django_settings.SECRET_KEY,
        **{f"encryption key {i}": key for i, key in enumerate(django_settings.FIELD_ENCRYPTION_KEYS)},
        **{f"cookie {name}": value for name, value in cookies.items()},
    }
    assert end_user.customer_token.startswith("dal:") and {"__lc_cid", "__lc_cst"} <= set(cookies)
    return values


def test_no_api_or_webhook_answer_and_no_callback_holds_a_secret(world, sandbox, sandbox_org, media_server, settings,
                                                                 receiver):
    bot, outsider = world
    seen = walk(bot, outsider, sandbox, media_server, settings)
    end_user = EndUser.objects.get(integration=bot.integration, external_id="u-1")
    secrets = secrets_of(bot, sandbox_org, end_user)

    statuses = {label: status for label, status, _, _ in seen.answers}
    # The walk reached what it meant to reach.
    assert statuses["session started"] == 201 and statuses["session conflict"] == 409
    assert statuses["messages"] == 200 and statuses["stop"] == 200 and statuses["message to closed"] == 409
    assert statuses["webhook incoming_event_message"] == 200 and statuses["webhook wrong secret"] == 401
    assert {statuses["no key"], statuses["wrong key"], statuses["basic auth"]} == {401}
    assert statuses["outsider session"] == statuses["outsider stop"] == 404
    assert statuses["too big"] == 413 and statuses["livechat down"] == 502 and statuses["rate limited"] == 429
    assert statuses["not json"] == 415 and statuses["malformed json"] == 400 and statuses["wrong method"] == 405
    messages = next(body for label, _, _, body in seen.answers if label == "messages")
    assert '"author":"agent"' in messages.replace(" ", "")

    callbacks = receiver.wait_for(2)
    texts = [(label, f"{status}\n{headers}\n{body}") for label, status, headers, body in seen.answers]
    texts += [(f"callback {r.json['type']}", "\n".join(f"{k}: {v}" for k, v in r.headers.items()) + "\n"
               + r.body.decode()) for r in callbacks]
    leaks = [(label, name) for label, text in texts for name, value in secrets.items() if value in text]
    leaks += [(label, pattern.pattern) for label, text in texts for pattern in SHAPES if pattern.search(text)]
    assert leaks == [], f"secrets in answers: {leaks}"
    assert len(seen.answers) >= 40
