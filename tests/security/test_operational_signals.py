"""Operational signals (bridge/metrics.py) at /metrics: webhook outcomes, outbox attempts and dead
letters, queue lag, LiveChat calls; with labels an attacker cannot multiply."""
import re

import pytest
from prometheus_client import REGISTRY

from bridge.models import Delivery
from bridge.services.callbacks import deliver_pending
from tests.api.conftest import Bot
from tests.conftest import make_integration
from tests.webhooks.helpers import fixture, make_session, post_webhook, with_event
from tests.webhooks.receiver import BotReceiver

SECRET = "whs-metrics-0a1b2c"


def value(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Delta:
    """Sample values now; `.of(name, **labels)` is how much one grew since."""

    def __init__(self, *series):
        self.before = {(name, tuple(sorted(labels.items()))): value(name, **labels) for name, labels in series}

    def of(self, name, **labels):
        return value(name, **labels) - self.before.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    return response.content.decode()


def sample_line(text, name, **labels) -> float:
    """The value of one series in the exposition text (labels in any order)."""
    for line in text.splitlines():
        if line.startswith(name + "{"):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line[len(name):line.rindex("}")]))
            if found == {k: str(v) for k, v in labels.items()}:
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{labels} not in /metrics")


@pytest.fixture
def receiver():
    receiver = BotReceiver().start()
    yield receiver
    receiver.stop()


@pytest.mark.django_db
def test_webhook_outcomes_are_counted_and_shown(client, receiver):
    integration = make_integration(webhook_secret=SECRET, callback_url=receiver.url).integration
    make_session(integration)
    event = fixture("incoming_event_message", secret=SECRET)
    series = [("hitl_webhooks_total", {"action": a, "outcome": o}) for a, o in [
        ("incoming_event", "accepted"), ("incoming_event", "duplicate"), ("incoming_event", "unauthorized"),
        ("other", "invalid"), ("other", "ignored"), ("chat_deactivated", "invalid"), ("other", "unauthorized"),
    ]] + [("hitl_webhooks_processed_total", {"action": "incoming_event", "outcome": "processed"})]
    delta = Delta(*series)

    assert post_webhook(client, integration, event).json() == {"result": "accepted"}
    assert post_webhook(client, integration, event).json() == {"result": "duplicate"}
    assert post_webhook(client, integration, fixture("incoming_event_message", secret="wrong")).status_code == 401
    assert post_webhook(client, integration, b"{not json").status_code == 400
    assert post_webhook(client, integration, {"secret_key": SECRET, "action": "chat_deactivated",
                                               "payload": {"chat_id": 7}}).status_code == 400
    assert post_webhook(client, integration, {"secret_key": SECRET, "action": "not_ours", "payload": {}}).json() == {
        "result": "ignored"}
    # Whatever the body calls its action, it is one of a fixed set of labels.
    for n in range(3):
        post_webhook(client, integration, {"secret_key": "wrong", "action": f"made-up-{n}-" + "x" * 50})

    assert [delta.of(name, **labels) for name, labels in series] == [1, 1, 1, 1, 1, 1, 3, 1]
    text = scrape(client)
    assert sample_line(text, "hitl_webhooks_total", action="incoming_event", outcome="accepted") >= 1
    assert "made-up" not in text


@pytest.mark.django_db
def test_callback_attempts_dead_letters_and_queue_lag_are_counted_and_shown(client, receiver, settings,
                                                                           django_capture_on_commit_callbacks):
    settings.CALLBACK_RETRY_SCHEDULE = [0]
    integration = make_integration(webhook_secret=SECRET, callback_url=receiver.url).integration
    session = make_session(integration)
    delta = Delta(
        ("hitl_delivery_attempts_total", {"queue": "callback", "outcome": "delivered"}),
        ("hitl_delivery_attempts_total", {"queue": "callback", "outcome": "retry"}),
        ("hitl_delivery_attempts_total", {"queue": "callback", "outcome": "dead"}),
        ("hitl_dead_letters_total", {"queue": "callback"}),
        ("hitl_queue_lag_seconds_count", {"queue": "callback"}),
    )

    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(client, integration, fixture("incoming_event_message", secret=SECRET))
    receiver.fail_next(2, status=503)
    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(client, integration, with_event(fixture("incoming_event_message", secret=SECRET), id="PGDGHT5G_9"))
    deliver_pending(session_id=session.pk)

    assert list(Delivery.objects.order_by("id").values_list("state", flat=True)) == ["delivered", "dead"]
    assert delta.of("hitl_delivery_attempts_total", queue="callback", outcome="delivered") == 1
    assert delta.of("hitl_delivery_attempts_total", queue="callback", outcome="retry") == 1
    assert delta.of("hitl_delivery_attempts_total", queue="callback", outcome="dead") == 1
    assert delta.of("hitl_dead_letters_total", queue="callback") == 1
    assert delta.of("hitl_queue_lag_seconds_count", queue="callback") == 3
    text = scrape(client)
    assert sample_line(text, "hitl_dead_letters_total", queue="callback") >= 1
    assert sample_line(text, "hitl_queue_lag_seconds_bucket", queue="callback", le="+Inf") >= 3


@pytest.mark.django_db(transaction=True)
def test_livechat_calls_and_message_sends_are_counted_and_shown(client, livechat_settings, sandbox, sandbox_org,
                                                               settings):
    settings.LIVECHAT_RETRY_SCHEDULE = [0]
    bot = Bot(make_integration(
        "acme", "main", client_id=sandbox_org.client_id, organization_id=sandbox_org.organization_id,
        agent_token=sandbox_org.agent_token, group_id=5,
    ))
    delta = Delta(
        ("hitl_livechat_calls_total", {"method": "start_chat", "outcome": "ok"}),
        ("hitl_livechat_calls_total", {"method": "send_event", "outcome": "ok"}),
        ("hitl_livechat_calls_total", {"method": "send_event", "outcome": "service_unavailable"}),
        ("hitl_delivery_attempts_total", {"queue": "message", "outcome": "delivered"}),
        ("hitl_delivery_attempts_total", {"queue": "message", "outcome": "retry"}),
        ("hitl_queue_lag_seconds_count", {"queue": "message"}),
    )
    session = bot.start()
    assert bot.send(session["id"], "one").status_code == 202
    sandbox.add_fault("send_event", count=1, error_type="service_unavailable")
    assert bot.send(session["id"], "two").status_code == 202  # fails once, retried by the kick below
    from bridge.services.outbound import kick_due_messages

    kick_due_messages()

    assert delta.of("hitl_livechat_calls_total", method="start_chat", outcome="ok") == 1
    assert delta.of("hitl_livechat_calls_total", method="send_event", outcome="service_unavailable") == 1
    assert delta.of("hitl_livechat_calls_total", method="send_event", outcome="ok") >= 2
    assert delta.of("hitl_delivery_attempts_total", queue="message", outcome="delivered") == 2
    assert delta.of("hitl_delivery_attempts_total", queue="message", outcome="retry") == 1
    assert delta.of("hitl_queue_lag_seconds_count", queue="message") == 3
    text = scrape(client)
    assert sample_line(text, "hitl_livechat_calls_total", method="start_chat", outcome="ok") >= 1


def test_every_series_exists_before_the_first_event(client):
    text = scrape(client)
    for queue in ("callback", "message"):
        assert f'hitl_dead_letters_total{{queue="{queue}"}}' in text
        for outcome in ("delivered", "retry", "dead"):
            assert sample_line(text, "hitl_delivery_attempts_total", queue=queue, outcome=outcome) >= 0
    for outcome in ("accepted", "duplicate", "ignored", "unauthorized", "invalid"):
        assert sample_line(text, "hitl_webhooks_total", action="other", outcome=outcome) >= 0
