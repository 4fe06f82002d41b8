"""Accepted webhooks are applied by a worker: in the order they arrived, even when their tasks
are lost or run out of order, and one that keeps failing is set aside instead of blocking its chat."""
from datetime import timedelta

import pytest
from django.utils import timezone

from bridge.models import Delivery, Message, WebhookReceipt
from bridge.services import webhooks
from bridge.tasks import process_webhooks
from tests.conftest import make_integration
from tests.webhooks.helpers import CHAT_ID, WEBHOOK_SECRET, fixture, make_session, with_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def integration(db):
    integration = make_integration(webhook_secret=WEBHOOK_SECRET, callback_url="https://bot.example.com/hitl").integration
    make_session(integration)
    return integration


def accept_only(client, django_capture_on_commit_callbacks, integration, envelope):
    """POSTs a webhook and keeps the tasks it queued from running (as if the broker lost them)."""
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post(integration.webhook_path, data=envelope, content_type="application/json")
    assert response.status_code == 200 and response.json() == {"result": "accepted"}
    return queued


def agent_message(n: int) -> dict:
    return with_event(fixture("incoming_event_message"), id=f"PGDGHT5G_{n}", text=f"reply {n}")


def test_a_lost_task_is_picked_up_by_the_sweep(client, integration, django_capture_on_commit_callbacks):
    accept_only(client, django_capture_on_commit_callbacks, integration, agent_message(1))
    assert Message.objects.count() == 0 and WebhookReceipt.objects.get().processed_at is None

    with django_capture_on_commit_callbacks(execute=True):
        assert webhooks.kick_pending_webhooks() == 0  # too fresh: its own task may still come
    WebhookReceipt.objects.update(received_at=timezone.now() - webhooks.SWEEP_GRACE - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert webhooks.kick_pending_webhooks() == 1

    receipt = WebhookReceipt.objects.get()
    assert receipt.outcome == "processed" and receipt.envelope is None  # applied, payload not kept twice
    assert Message.objects.get().text == "reply 1"
    assert Delivery.objects.get().type == "agent.message"


def test_a_chats_webhooks_are_applied_in_arrival_order_whatever_runs_first(
    client, integration, django_capture_on_commit_callbacks
):
    for n in range(1, 6):
        accept_only(client, django_capture_on_commit_callbacks, integration, agent_message(n))
    # The last webhook's task runs first: it applies the chat's pending webhooks oldest first.
    process_webhooks.run(str(integration.pk), CHAT_ID)

    assert list(Message.objects.order_by("id").values_list("text", flat=True)) == [f"reply {n}" for n in range(1, 6)]
    texts = [d.payload["data"]["message"]["text"] for d in Delivery.objects.order_by("id")]
    assert texts == [f"reply {n}" for n in range(1, 6)]
    assert process_webhooks.run(str(integration.pk), CHAT_ID) is None  # the other tasks find nothing left
    assert Message.objects.count() == 5


def test_a_webhook_that_keeps_failing_is_set_aside_and_the_chat_goes_on(
    client, integration, django_capture_on_commit_callbacks, monkeypatch
):
    accept_only(client, django_capture_on_commit_callbacks, integration, agent_message(1))
    accept_only(client, django_capture_on_commit_callbacks, integration, agent_message(2))
    real_apply = webhooks._apply

    def broken_for_the_first(*, integration, receipt):
        if receipt.envelope["payload"]["event"]["id"] == "PGDGHT5G_1":
            raise RuntimeError("a bug")
        return real_apply(integration=integration, receipt=receipt)

    monkeypatch.setattr(webhooks, "_apply", broken_for_the_first)
    for attempt in range(1, webhooks.MAX_FAILURES):
        with pytest.raises(RuntimeError):
            webhooks.process_pending_webhooks(integration_id=integration.pk, chat_id=CHAT_ID)
        first = WebhookReceipt.objects.order_by("id").first()
        assert (first.failures, first.processed_at) == (attempt, None)
        assert Message.objects.count() == 0  # the second waits behind the first: order is kept

    with pytest.raises(RuntimeError):
        webhooks.process_pending_webhooks(integration_id=integration.pk, chat_id=CHAT_ID)
    assert WebhookReceipt.objects.order_by("id").first().outcome == "failed"
    assert webhooks.process_pending_webhooks(integration_id=integration.pk, chat_id=CHAT_ID) == 1
    assert list(Message.objects.values_list("text", flat=True)) == ["reply 2"]


def test_pending_receipts_outlive_the_purge(client, integration, django_capture_on_commit_callbacks):
    accept_only(client, django_capture_on_commit_callbacks, integration, agent_message(1))
    WebhookReceipt.objects.update(received_at=timezone.now() - timedelta(days=3))
    assert webhooks.purge_webhook_receipts() == 0
    webhooks.process_pending_webhooks(integration_id=integration.pk, chat_id=CHAT_ID)
    assert webhooks.purge_webhook_receipts() == 1
    assert Message.objects.count() == 1
