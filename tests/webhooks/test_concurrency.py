"""Concurrency on PostgreSQL (make test-services): copies of one webhook racing each other, and
several workers draining one session's callbacks at the same time. SQLite serializes writers, so
these only mean something on a real database."""
import threading

import pytest
import requests
from django.db import connection

from bridge.models import Delivery, Message, SessionEvent
from bridge.services.callbacks import deliver_pending, queue_callback
from tests.conftest import make_integration
from tests.webhooks.helpers import WEBHOOK_SECRET, fixture, make_session
from tests.webhooks.receiver import bot_receiver  # noqa: F401 (fixture)

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def in_threads(count, target):
    """Runs `target(i)` in `count` threads released together; returns their results."""
    barrier = threading.Barrier(count)
    results = [None] * count
    errors = []

    def run(i):
        try:
            barrier.wait()
            results[i] = target(i)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    return results


@pytest.fixture
def wired(live_server, bot_receiver, settings):  # noqa: F811
    settings.CALLBACK_RETRY_SCHEDULE = [0, 0, 0]
    integration = make_integration(webhook_secret=WEBHOOK_SECRET, callback_url=bot_receiver.url).integration
    session = make_session(integration)
    return live_server.url + integration.webhook_path, session, bot_receiver


def test_copies_of_one_webhook_racing_store_and_call_back_once(wired):
    url, session, receiver = wired
    body = fixture("incoming_event_message")
    results = in_threads(6, lambda i: requests.post(url, json=body, timeout=20))
    assert [r.status_code for r in results] == [200] * 6
    assert sorted(r.json()["result"] for r in results) == ["accepted"] + ["duplicate"] * 5
    assert Message.objects.filter(direction="to_bot").count() == 1
    assert Delivery.objects.count() == 1
    assert len(receiver.received()) == 1


def test_the_same_agent_joining_twice_at_once_assigns_once(wired):
    url, session, receiver = wired
    bodies = []
    for reason in ("manual", "other", "assigned", "unassigned"):
        body = fixture("user_added_to_chat")
        body["payload"]["reason"] = reason  # different webhooks, one state change
        bodies.append(body)
    in_threads(4, lambda i: requests.post(url, json=bodies[i], timeout=20))
    assert SessionEvent.objects.filter(kind="assigned").count() == 1
    assert [p["type"] for p in receiver.payloads()] == ["session.assigned"]


def test_several_workers_send_each_callback_once_and_in_order(wired):
    url, session, receiver = wired
    receiver.delay = 0.02
    deliveries = [queue_callback(session=session, type="agent.message", data={"n": i}) for i in range(15)]
    in_threads(5, lambda i: deliver_pending(session_id=session.pk))
    # A worker stops when another holds the head; whoever is left drains the rest.
    deliver_pending(session_id=session.pk)
    assert [r.webhook_id for r in receiver.received()] == [d.event_id for d in deliveries]
    assert set(Delivery.objects.values_list("state", "attempts")) == {("delivered", 1)}


def test_several_workers_on_one_chat_apply_each_webhook_once_and_in_order(wired):
    """Workers that find the chat's oldest webhook locked leave it (and the rest) to the worker
    holding it, which goes on until none is pending: nothing waits, nothing is skipped."""
    from bridge.services import webhooks

    url, session, receiver = wired
    integration = session.integration
    for n in range(30):
        envelope = fixture("incoming_event_message")
        envelope["payload"]["event"].update(id=f"PGDGHT5G_{n}", text=f"reply {n}")
        envelope.pop("secret_key")
        assert webhooks._store_receipt(integration=integration, key=f"event:PGDGHT5G_{n}", action="incoming_event",
                                       chat_id=session.chat_id, raw=envelope)
    applied = in_threads(4, lambda i: webhooks.process_pending_webhooks(
        integration_id=integration.pk, chat_id=session.chat_id))
    assert sum(applied) == 30
    assert list(Message.objects.order_by("id").values_list("text", flat=True)) == [f"reply {n}" for n in range(30)]
    assert [p["data"]["message"]["text"] for p in receiver.payloads()] == [f"reply {n}" for n in range(30)]
