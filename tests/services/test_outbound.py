"""The outbox of messages to LiveChat: claims, order, leases, retries (against the sandbox)."""
import dataclasses
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from bridge.models import Message
from bridge.services import customers, outbound
from bridge.services.outbound import kick_due_messages, send_pending_messages
from bridge.models import HitlSession
from tests.api.conftest import bot, customer_texts, lc, media_server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def started(bot):
    body = bot.start()
    return bot, body


def queue(session_id, *texts):
    """Stores messages without sending them (as if the worker were not running yet)."""
    session = HitlSession.objects.get(pk=session_id)
    rows = []
    for text in texts:
        rows.append(Message.objects.create(session=session, direction="to_agent", author="user", text=text,
                                           next_attempt_at=timezone.now()))
    return rows


def test_a_claimed_row_cannot_be_claimed_again(started):
    bot, body = started
    (message,) = queue(body["id"], "one")

    first = outbound._claim_head(session_id=body["id"])
    second = outbound._claim_head(session_id=body["id"])

    assert first.pk == message.pk and first.delivery_state == "sending" and first.attempts == 1
    assert second is None
    assert send_pending_messages(session_id=body["id"]) == 0  # another worker holds the head


def test_a_dead_workers_claim_is_taken_over_after_its_lease(started, lc):
    bot, body = started
    (message,) = queue(body["id"], "one")
    outbound._claim_head(session_id=body["id"])  # the worker dies here
    Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))

    assert kick_due_messages() == 1

    message.refresh_from_db()
    assert message.delivery_state == "sent" and message.attempts == 2
    assert customer_texts(lc, body["livechat_chat_id"])[1:] == ["one"]


def test_two_workers_at_once_send_each_message_once(started, lc):
    bot, body = started
    queue(body["id"], "one", "two", "three")
    lc.add_fault("send_event", count=1, delay=0.5)  # the first send is slow: the workers overlap
    results = []

    def worker():
        try:
            results.append(send_pending_messages(session_id=body["id"]))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    threads[0].start()
    time.sleep(0.15)  # the first worker is inside its slow send_event now
    threads[1].start()
    for thread in threads:
        thread.join(timeout=10)

    assert sorted(results) == [0, 3]
    assert customer_texts(lc, body["livechat_chat_id"])[1:] == ["one", "two", "three"]
    assert len(lc.requests("send_event")) == 3


def test_a_session_still_starting_keeps_its_messages_queued(started, lc):
    bot, body = started
    HitlSession.objects.filter(pk=body["id"]).update(chat_id="")
    (message,) = queue(body["id"], "early")

    assert send_pending_messages(session_id=body["id"]) == 0
    message.refresh_from_db()
    assert message.delivery_state == "pending" and message.attempts == 0


def test_messages_of_a_session_that_is_over_are_failed_not_sent(started, lc):
    bot, body = started
    HitlSession.objects.filter(pk=body["id"]).update(status="closed")
    rows = queue(body["id"], "one", "two")

    send_pending_messages(session_id=body["id"])

    for row in rows:
        row.refresh_from_db()
        assert row.delivery_state == "failed" and "the session is closed" in row.last_error
    assert lc.requests("send_event") == []


def test_a_retry_after_longer_than_the_schedule_is_honoured(started, lc, settings):
    bot, body = started
    settings.LIVECHAT_RETRY_SCHEDULE = [1]
    queue(body["id"], "one")

    message = outbound._claim_head(session_id=body["id"])
    outbound._retry_later(session=message.session, message=message, error="LiveChat too_many_requests",
                          retry_after=120)

    message.refresh_from_db()
    assert message.delivery_state == "pending"
    assert message.next_attempt_at > timezone.now() + timedelta(seconds=100)


def test_a_permanent_refusal_fails_one_message_and_the_next_goes_on(started, lc):
    bot, body = started
    lc.add_fault("send_event", count=1, error_type="validation", message="event.text is too long")
    queue(body["id"], "refused", "fine")

    assert send_pending_messages(session_id=body["id"]) == 2  # one failed for good, one sent

    refused = Message.objects.get(session_id=body["id"], text="refused")
    assert refused.delivery_state == "failed" and "validation" in refused.last_error
    assert customer_texts(lc, body["livechat_chat_id"])[1:] == ["fine"]


def test_the_upload_is_kept_so_a_retry_only_resends_the_event(started, lc, media_server):
    bot, body = started
    url = media_server.serve("/a.pdf", b"%PDF-1.4 tiny", "application/pdf")
    lc.add_fault("send_event", count=1, error_type="service_unavailable")

    bot.post(f"sessions/{body['id']}/messages", {"type": "file", "url": url})
    kick_due_messages()

    assert len(lc.requests("upload_file")) == 1
    assert media_server.hits == ["/a.pdf"]
    events = customer_texts(lc, body["livechat_chat_id"])[1:]
    assert len(events) == 1 and events[0]["name"] == "a.pdf"


def test_a_send_that_landed_without_an_answer_is_not_sent_again(started, lc):
    """A worker killed mid-send (or a timeout) leaves LiveChat holding the event while the row
    says `sending`: the next try finds the event by its custom_id instead of sending it twice."""
    bot, body = started
    (message,) = queue(body["id"], "one")
    claimed = outbound._claim_head(session_id=body["id"])
    with outbound.customer_client(end_user=claimed.session.end_user) as client:
        outbound._deliver(client=client, session=claimed.session, message=claimed)  # the worker dies here
    Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))

    assert kick_due_messages() == 1

    message.refresh_from_db()
    assert message.delivery_state == "sent" and message.attempts == 2
    assert customer_texts(lc, body["livechat_chat_id"])[1:] == ["one"]
    assert len(lc.requests("send_event")) == 1
    event = lc.chat(body["livechat_chat_id"])["threads"][-1]["events"][-1]
    assert (event["custom_id"], event["id"]) == (f"hitl_{message.pk}", message.livechat_event_id)


def test_after_a_timeout_the_next_try_waits_a_timeout_and_does_not_send_twice(started, lc, monkeypatch):
    """LiveChat answers too late (it still stores the event): the retry waits at least one more
    LiveChat timeout, then finds the event instead of sending it again."""
    bot, body = started
    real = customers.livechat_config
    monkeypatch.setattr(customers, "livechat_config",
                        lambda **kw: dataclasses.replace(real(**kw), timeout=1.0))
    lc.add_fault("send_event", count=1, delay=1.6)  # stored after the client gave up
    queue(body["id"], "one", "two")

    before = timezone.now()
    assert send_pending_messages(session_id=body["id"]) == 0
    one = Message.objects.get(session_id=body["id"], text="one")
    assert one.delivery_state == "pending" and "timeout" in one.last_error
    # Failed 1 s after `before`; the next try 1 s after that, not the schedule's 0 s later.
    assert one.next_attempt_at >= before + timedelta(seconds=1.9)
    time.sleep(max(0.0, (one.next_attempt_at - timezone.now()).total_seconds()) + 0.1)  # the slow one landed

    assert send_pending_messages(session_id=body["id"]) == 2

    assert customer_texts(lc, body["livechat_chat_id"])[1:] == ["one", "two"]
    assert len(lc.requests("send_event")) == 2  # the slow one and "two": "one" was not sent again
