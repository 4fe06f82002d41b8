"""Helpers for webhook and callback tests: recorded LiveChat payloads (Zulip-style fixtures),
sessions as the console would have them, and a handoff started in the LiveChat sandbox."""
from __future__ import annotations

import copy
import json
import time
from pathlib import Path

from django.test import TestCase

from bridge.livechat import CustomerClient, CustomerIdentity, LiveChatConfig
from bridge.models import EndUser, HitlSession, Integration, WebhookReceipt

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "livechat"
# The ids the recorded fixtures use.
CHAT_ID = "PJ0MRSHTDG"
THREAD_ID = "PGDGHT5G"
CUSTOMER_ID = "b7eff798-f8df-4364-8059-649c35c9ed0c"
AGENT_ID = "smith@example.com"
WEBHOOK_SECRET = "whs-livechat-9c1f7e0b2a"


def fixture(name: str, *, secret: str = WEBHOOK_SECRET) -> dict:
    """A recorded webhook envelope (tests/fixtures/livechat/<name>.json) carrying `secret`."""
    envelope = json.loads((FIXTURES / f"{name}.json").read_text())
    envelope["secret_key"] = secret
    return envelope


def with_event(envelope: dict, **fields) -> dict:
    """A copy of an incoming_event envelope with event fields replaced."""
    envelope = copy.deepcopy(envelope)
    envelope["payload"]["event"].update(fields)
    return envelope


def post_webhook(client, integration: Integration, body) -> object:
    """POSTs a webhook, and runs the work it queued as a commit would: tests run tasks inline
    after commit, and a test's own transaction never commits."""
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(integration.webhook_path, data=data, content_type="application/json")


def webhook_outcome(client, integration: Integration, body) -> str:
    """Posts a webhook and says what became of it: the endpoint's `duplicate` or `ignored`, or,
    once accepted, what the worker did with it (`processed`, `duplicate`, `ignored`), or
    `pending` if it is waiting."""
    response = post_webhook(client, integration, body)
    assert response.status_code == 200, response.content
    result = response.json()["result"]
    if result != "accepted":
        return result
    receipt = WebhookReceipt.objects.filter(integration=integration).latest("id")
    return receipt.outcome if receipt.processed_at else "pending"


def make_session(
    integration: Integration,
    *,
    chat_id: str = CHAT_ID,
    thread_id: str = THREAD_ID,
    customer_id: str = CUSTOMER_ID,
    status: str = HitlSession.Status.WAITING,
    conversation_id: str = "conv-1",
    external_id: str = "u-42",
) -> HitlSession:
    """A session as POST /sessions leaves it once LiveChat started the chat."""
    end_user, _ = EndUser.objects.get_or_create(
        integration=integration, external_id=external_id,
        defaults={"name": "Thomas Anderson", "livechat_customer_id": customer_id},
    )
    return HitlSession.objects.create(
        integration=integration, end_user=end_user, conversation_id=conversation_id,
        chat_id=chat_id, thread_id=thread_id, status=status,
    )


def start_sandbox_handoff(
    *, integration: Integration, sandbox_org, sandbox, conversation_id: str = "conv-e2e", text: str = "I need a human"
) -> HitlSession:
    """A chat started in the sandbox as the end user's LiveChat customer, with the EndUser and
    HitlSession rows the console keeps for it (what POST /api/v1/sessions does).

    The sandbox's own incoming_chat webhook is let through before the rows exist, so no request
    thread of the live server touches the (shared, in-memory) test database while we write.
    """
    config = LiveChatConfig(
        api_url=sandbox.url, accounts_url=sandbox.url, api_version="3.6", client_id=sandbox_org.client_id,
        organization_id=sandbox_org.organization_id, agent_token=sandbox_org.agent_token,
        redirect_uri=sandbox_org.redirect_uri, timeout=5.0,
    )
    identity = CustomerIdentity()
    chat = CustomerClient(config, identity).start_chat(
        group_id=integration.group_id, events=[{"type": "message", "text": text}]
    )
    assert sandbox.wait_for_webhooks(10)
    end_user = EndUser.objects.create(
        integration=integration, external_id=f"user-{conversation_id}", name="Thomas Anderson",
        livechat_customer_id=identity.customer_id,
    )
    return HitlSession.objects.create(
        integration=integration, end_user=end_user, conversation_id=conversation_id,
        chat_id=chat["chat_id"], thread_id=chat["thread_id"], status=HitlSession.Status.WAITING,
    )


def wait_until(predicate, *, timeout: float = 10.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")
