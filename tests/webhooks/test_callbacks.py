"""The bot-callback outbox: signing, retries, dead letters, per-session order, claims, redelivery.

Real HTTP to a local receiver; `deliver_pending`/`kick_due_deliveries` are called directly so the
schedule is driven deterministically (queue_callback's after-commit send does not run inside
these tests' transactions).
"""
import json
import socket
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from bridge.models import Delivery, HitlSession, SessionEvent
from bridge.services import callbacks
from bridge.services.callbacks import deliver_pending, kick_due_deliveries, queue_callback, redeliver
from bridge.services.signing import signature_headers
from tests.conftest import make_integration
from tests.webhooks.helpers import make_session
from tests.webhooks.receiver import bot_receiver  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture
def schedule(settings):
    settings.CALLBACK_RETRY_SCHEDULE = [0, 0, 0, 0]
    return settings


@pytest.fixture
def integration(bot_receiver, schedule):  # noqa: F811
    return make_integration(callback_url=bot_receiver.url).integration


@pytest.fixture
def session(integration):
    return make_session(integration)


@pytest.fixture
def run_after_commit(django_capture_on_commit_callbacks):
    """Runs what would run after commit (the tests' transaction never commits)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def queue(session, n=1, type_="agent.message"):
    return [queue_callback(session=session, type=type_, data={"n": i}) for i in range(n)]


def test_the_signature_verifies_with_standard_webhooks(session, integration, bot_receiver):  # noqa: F811
    [delivery] = queue(session)
    assert deliver_pending(session_id=session.pk) == 1
    [request] = bot_receiver.received()
    payload = Webhook(integration.callback_secret).verify(request.body, request.headers)
    assert payload == delivery.payload
    assert request.headers["webhook-id"] == delivery.event_id == payload["id"]
    assert request.headers["webhook-signature"].startswith("v1,")
    assert request.headers["content-type"] == "application/json"
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("delivered", 1, 200)
    assert delivery.delivered_at is not None
    [attempt] = delivery.attempt_log.all()
    assert (attempt.number, attempt.status_code, attempt.response_body) == (1, 200, '{"ok":true}')


def test_the_signature_matches_the_spec_by_hand():
    """The format, independently of the library: base64 HMAC-SHA256 of "{id}.{ts}.{body}"."""
    import base64
    import hashlib
    import hmac

    key = b"0123456789abcdef0123"
    secret = "whsec_" + base64.b64encode(key).decode()
    stamp = timezone.now().replace(microsecond=0)
    headers = signature_headers(secret=secret, msg_id="evt_1", body='{"a":1}', timestamp=stamp)
    expected = hmac.new(key, f"evt_1.{int(stamp.timestamp())}.{{\"a\":1}}".encode(), hashlib.sha256).digest()
    assert headers == {
        "webhook-id": "evt_1",
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": "v1," + base64.b64encode(expected).decode(),
    }


def test_the_payload_shape(session):
    [delivery] = queue(session)
    assert set(delivery.payload) == {"id", "type", "created_at", "data"}
    assert delivery.payload["created_at"].endswith("Z")
    assert delivery.payload["data"] == {
        "session_id": str(session.pk), "conversation_id": "conv-1", "user_external_id": "u-42", "n": 0,
    }


@pytest.mark.parametrize("status", [500, 502, 503, 408, 429])
def test_retryable_answers_are_retried_with_the_same_id(session, bot_receiver, status):  # noqa: F811
    bot_receiver.fail_next(1, status=status)
    [delivery] = queue(session)
    assert deliver_pending(session_id=session.pk) == 0
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("pending", 1, status)
    assert deliver_pending(session_id=session.pk) == 1
    first, second = bot_receiver.received()
    assert first.webhook_id == second.webhook_id == delivery.event_id
    assert first.body == second.body
    assert [a.status_code for a in Delivery.objects.get().attempt_log.all()] == [status, 200]


def test_the_schedule_is_kept_in_the_row(session, bot_receiver, settings):  # noqa: F811
    settings.CALLBACK_RETRY_SCHEDULE = [60, 300]
    bot_receiver.fail_next(1)
    [delivery] = queue(session)
    before = timezone.now()
    deliver_pending(session_id=session.pk)
    delivery.refresh_from_db()
    assert delivery.state == "pending"
    assert before + timedelta(seconds=59) < delivery.next_attempt_at < timezone.now() + timedelta(seconds=61)
    # Not due: neither a new task nor the sweep sends it.
    assert deliver_pending(session_id=session.pk) == 0
    assert kick_due_deliveries() == 0
    assert len(bot_receiver.received()) == 1


def test_retry_after_is_honoured_within_the_schedule(session, bot_receiver, settings):  # noqa: F811
    settings.CALLBACK_RETRY_SCHEDULE = [1, 600]
    bot_receiver.fail_next(1, status=429, headers={"Retry-After": "120"})
    [delivery] = queue(session)
    deliver_pending(session_id=session.pk)
    delivery.refresh_from_db()
    wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert 110 < wait <= 120


@pytest.mark.parametrize("status", [400, 401, 404, 410, 301])
def test_other_answers_are_dead_letters_with_the_answer_kept(session, bot_receiver, status):  # noqa: F811
    bot_receiver.fail_next(1, status=status, body=b"x" * 5000)
    [delivery] = queue(session)
    deliver_pending(session_id=session.pk)
    delivery.refresh_from_db()
    assert delivery.state == "dead"
    assert delivery.dead_lettered
    assert delivery.last_status == status
    assert len(delivery.last_response) == callbacks.MAX_STORED_RESPONSE
    assert len(delivery.attempt_log.get().response_body) == callbacks.MAX_STORED_RESPONSE


def test_an_exhausted_schedule_is_a_dead_letter(session, bot_receiver):  # noqa: F811
    bot_receiver.fail_next(10, status=503, body=b"maintenance")
    [delivery] = queue(session)
    for _ in range(10):
        deliver_pending(session_id=session.pk)
    delivery.refresh_from_db()
    assert delivery.state == "dead"
    assert delivery.attempts == 5  # the first try + 4 retries
    assert (delivery.last_status, delivery.last_response) == (503, "maintenance")
    assert [a.number for a in delivery.attempt_log.all()] == [1, 2, 3, 4, 5]
    assert len(bot_receiver.received()) == 5


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_errors_are_retried(session, integration):
    integration.callback_url = f"http://127.0.0.1:{_closed_port()}/hook"
    integration.save()
    [delivery] = queue(session)
    deliver_pending(session_id=session.pk)
    delivery.refresh_from_db()
    assert delivery.state == "pending"
    assert delivery.last_status is None
    assert delivery.last_error == "connection error: ConnectionError"
    assert delivery.attempt_log.get().error == delivery.last_error


def test_timeouts_are_retried(session, bot_receiver, monkeypatch):  # noqa: F811
    monkeypatch.setattr(callbacks, "TIMEOUT", (1, 0.2))
    bot_receiver.delay = 0.6
    [delivery] = queue(session)
    deliver_pending(session_id=session.pk)
    delivery.refresh_from_db()
    assert (delivery.state, delivery.last_error) == ("pending", "timeout")
    bot_receiver.delay = 0
    deliver_pending(session_id=session.pk)
    delivery.refresh_from_db()
    assert delivery.state == "delivered"


def test_private_addresses_are_refused_when_not_allowed(session, settings):
    settings.CALLBACK_ALLOW_PRIVATE_NETWORKS = False
    [delivery] = queue(session)
    deliver_pending(session_id=session.pk)
    delivery.refresh_from_db()
    assert delivery.state == "pending"
    assert delivery.last_error.startswith("refused URL:")
    assert "non-public" in delivery.last_error


def test_no_callback_url_any_more_is_a_dead_letter(session, integration):
    [delivery] = queue(session)
    integration.callback_url = ""
    integration.save()
    deliver_pending(session_id=session.pk)
    delivery.refresh_from_db()
    assert delivery.state == "dead"
    assert "no callback URL" in delivery.last_error


# ---- order -----------------------------------------------------------------------------------


def test_a_later_callback_waits_for_the_earlier_one(session, bot_receiver):  # noqa: F811
    bot_receiver.fail_next(2)
    first, second = queue(session, 2)
    deliver_pending(session_id=session.pk)
    deliver_pending(session_id=session.pk)
    assert [r.webhook_id for r in bot_receiver.received()] == [first.event_id, first.event_id]
    second.refresh_from_db()
    assert (second.state, second.attempts) == ("pending", 0)
    assert deliver_pending(session_id=session.pk) == 2
    assert [r.webhook_id for r in bot_receiver.received()] == [first.event_id] * 3 + [second.event_id]


def test_a_dead_letter_does_not_block_the_session(session, bot_receiver):  # noqa: F811
    bot_receiver.fail_next(1, status=400)
    first, second, third = queue(session, 3)
    assert deliver_pending(session_id=session.pk) == 2
    first.refresh_from_db()
    assert first.state == "dead"
    assert [r.webhook_id for r in bot_receiver.received()] == [first.event_id, second.event_id, third.event_id]


def test_sessions_do_not_wait_for_each_other(integration, bot_receiver):  # noqa: F811
    stuck = make_session(integration, chat_id="CHATSTUCK1", conversation_id="c-stuck", external_id="u-1")
    fine = make_session(integration, chat_id="CHATFINE01", conversation_id="c-fine", external_id="u-2")
    bot_receiver.fail_next(1)
    queue(stuck)
    [other] = queue(fine)
    deliver_pending(session_id=stuck.pk)
    assert deliver_pending(session_id=fine.pk) == 1
    assert bot_receiver.received()[-1].webhook_id == other.event_id


# ---- claims ----------------------------------------------------------------------------------


def test_a_row_is_claimed_once(session):
    [delivery] = queue(session)
    assert callbacks._claim(delivery) is not None
    assert callbacks._claim(delivery) is None  # the same stale view of the row: someone has it
    delivery.refresh_from_db()
    assert delivery.state == "delivering"
    assert callbacks._claim(delivery) is None  # its lease is live
    assert callbacks._claim_next(session_id=session.pk) is None


def test_a_row_behind_an_undelivered_one_cannot_be_claimed(session):
    first, second = queue(session, 2)
    assert callbacks._claim(second) is None
    Delivery.objects.filter(pk=first.pk).update(state="delivered")
    assert callbacks._claim(second) is not None


def test_a_stale_lease_is_reclaimed_by_the_sweep(session, bot_receiver, run_after_commit):  # noqa: F811
    [delivery] = queue(session)
    claimed = callbacks._claim(delivery)  # a worker took it ... and died
    assert claimed.attempts == 1
    assert kick_due_deliveries() == 0  # the lease is still live
    Delivery.objects.filter(pk=delivery.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    with run_after_commit():
        assert kick_due_deliveries() == 1
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("delivered", 2)
    assert [r.webhook_id for r in bot_receiver.received()] == [delivery.event_id]


def test_the_sweep_hands_due_sessions_to_workers(session, bot_receiver, run_after_commit):  # noqa: F811
    bot_receiver.fail_next(1)
    [delivery] = queue(session)
    deliver_pending(session_id=session.pk)
    with run_after_commit() as tasks:
        assert kick_due_deliveries() == 1
    assert len(tasks) == 1
    delivery.refresh_from_db()
    assert delivery.state == "delivered"


def test_a_lost_claim_does_not_overwrite_the_new_holder(session, bot_receiver):  # noqa: F811
    [delivery] = queue(session)
    mine = callbacks._claim(delivery)
    # My lease ran out and another worker reclaimed the row (attempts moved on).
    Delivery.objects.filter(pk=delivery.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    theirs = callbacks._claim(Delivery.objects.get(pk=delivery.pk))
    assert theirs is not None
    assert callbacks._attempt(mine) == "delivering"  # my result is logged, not applied
    assert callbacks._attempt(theirs) == "delivered"
    assert [a.number for a in Delivery.objects.get().attempt_log.all()] == [1, 2]


# ---- redelivery --------------------------------------------------------------------------------


def test_redeliver_a_dead_letter(session, bot_receiver, run_after_commit):  # noqa: F811
    bot_receiver.fail_next(1, status=400)
    [delivery] = queue(session)
    deliver_pending(session_id=session.pk)
    delivery.refresh_from_db()
    assert delivery.state == "dead"
    with run_after_commit():
        redeliver(delivery=delivery, actor="staff:alice")
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("delivered", 2)
    assert {r.webhook_id for r in bot_receiver.received()} == {delivery.event_id}
    event = SessionEvent.objects.get(kind="manual")
    assert event.actor == "staff:alice"
    assert delivery.event_id in event.summary


def test_redeliver_a_delivered_one_and_leave_pending_ones_alone(session, bot_receiver, run_after_commit):  # noqa: F811
    first, second = queue(session, 2)
    assert callbacks._claim(first) is not None
    callbacks._attempt(Delivery.objects.get(pk=first.pk))
    first.refresh_from_db()
    with run_after_commit():
        redeliver(delivery=second)  # pending: nothing to do
        assert SessionEvent.objects.filter(kind="manual").count() == 0
        redeliver(delivery=first)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, second.state) == ("delivered", "delivered")
    assert [r.webhook_id for r in bot_receiver.received()] == [first.event_id, first.event_id, second.event_id]


def test_a_redelivered_dead_letter_gets_one_more_try(session, bot_receiver):  # noqa: F811
    bot_receiver.fail_next(6, status=500)
    [delivery] = queue(session)
    for _ in range(5):
        deliver_pending(session_id=session.pk)
    delivery.refresh_from_db()
    assert delivery.state == "dead"
    redeliver(delivery=delivery)
    deliver_pending(session_id=session.pk)
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("dead", 6)


def test_queue_callback_without_a_callback_url_is_none(session, integration):
    integration.callback_url = ""
    integration.save()
    session.refresh_from_db()
    assert queue_callback(session=session, type="agent.message", data={}) is None
    assert Delivery.objects.count() == 0


def test_the_body_sent_is_the_payload_as_json(session, bot_receiver):  # noqa: F811
    delivery = queue_callback(session=session, type="agent.message", data={"text": "héllo ✓"})
    deliver_pending(session_id=session.pk)
    [request] = bot_receiver.received()
    assert json.loads(request.body) == delivery.payload
    assert "héllo ✓".encode() in request.body
    assert HitlSession.objects.get().pk == session.pk
