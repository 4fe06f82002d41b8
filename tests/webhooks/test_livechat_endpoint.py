"""POST /webhooks/livechat/<integration>/: who may call it, what it refuses, what it ignores."""
import json
import logging
import uuid

import pytest

from bridge.models import Delivery, Message, SessionEvent, WebhookReceipt
from bridge.services.webhooks import secret_matches
from tests.conftest import make_integration
from tests.webhooks.helpers import WEBHOOK_SECRET, fixture, make_session, post_webhook, webhook_outcome, with_event
from tests.webhooks.receiver import bot_receiver  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def nothing_applied():
    return (
        Message.objects.filter(direction=Message.Direction.TO_BOT).count() == 0
        and SessionEvent.objects.count() == 0
        and Delivery.objects.count() == 0
    )


def nothing_stored():
    return WebhookReceipt.objects.count() == 0 and nothing_applied()


@pytest.fixture
def hook(db):
    """An integration whose bot has a callback URL, and a session for the fixtures' chat."""
    bundle = make_integration(webhook_secret=WEBHOOK_SECRET, callback_url="https://bot.example.com/hitl")
    make_session(bundle.integration)
    return bundle.integration


def test_an_agent_message_is_accepted(client, hook):
    response = post_webhook(client, hook, fixture("incoming_event_message"))
    assert response.status_code == 200
    assert response.json() == {"result": "accepted"}
    assert Message.objects.filter(direction="to_bot").count() == 1
    assert WebhookReceipt.objects.get().outcome == "processed"


def test_unknown_integration_is_404_json(client, hook):
    response = client.post(f"/webhooks/livechat/{uuid.uuid4()}/", data=json.dumps(fixture("incoming_event_message")),
                           content_type="application/json")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"
    assert nothing_stored()


def test_disabled_integration_is_404(client, hook):
    hook.enabled = False
    hook.save()
    response = post_webhook(client, hook, fixture("incoming_event_message"))
    assert response.status_code == 404
    assert nothing_stored()


@pytest.mark.parametrize("secret", ["wrong", "", None, 42, WEBHOOK_SECRET + "x", WEBHOOK_SECRET[:-1]])
def test_wrong_or_missing_secret_is_401_and_stores_nothing(client, hook, secret):
    envelope = fixture("incoming_event_message")
    if secret is None:
        del envelope["secret_key"]
    else:
        envelope["secret_key"] = secret
    response = post_webhook(client, hook, envelope)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "authentication_error"
    assert WEBHOOK_SECRET not in response.content.decode()
    assert nothing_stored()


def test_an_integration_without_a_secret_accepts_nothing(db):
    integration = make_integration(webhook_secret="").integration
    assert not secret_matches(integration=integration, given="")
    assert not secret_matches(integration=integration, given="anything")


@pytest.mark.parametrize("body", [b"{not json", b"", b"\xff\xfe", b"[1, 2]", b'"text"', b"null"])
def test_malformed_body_is_400_json_and_stores_nothing(client, hook, body):
    response = post_webhook(client, hook, body)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "validation_error"
    assert nothing_stored()


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda e: e["payload"]["event"].update(id=123), "payload.event.id"),
        (lambda e: e["payload"].update(chat_id=["PJ0MRSHTDG"]), "payload.chat_id"),
        (lambda e: e["payload"].pop("event"), "payload"),
        (lambda e: e["payload"]["event"].update(text={"rich": True}), "payload.event.text"),
        (lambda e: e.update(payload="not an object"), "payload"),
        (lambda e: e.update(action=7), "action"),
        (lambda e: e.pop("action"), "body"),
    ],
)
def test_wrong_types_are_400_with_the_field_and_store_nothing(client, hook, mutate, field):
    envelope = fixture("incoming_event_message")
    mutate(envelope)
    response = post_webhook(client, hook, envelope)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "validation_error"
    assert field in error["details"]["fields"]
    assert nothing_stored()


def test_a_wrong_secret_wins_over_a_malformed_envelope(client, hook):
    envelope = fixture("incoming_event_message", secret="wrong")
    envelope["payload"]["event"]["id"] = 5
    assert post_webhook(client, hook, envelope).status_code == 401


def test_optional_fields_may_be_absent_or_null(client, hook):
    envelope = fixture("incoming_event_message")
    for name in ("webhook_id", "organization_id", "additional_data"):
        envelope.pop(name)
    event = envelope["payload"]["event"]
    for name in ("created_at", "visibility", "properties", "custom_id"):
        event.pop(name)
    envelope["payload"]["event"]["text"] = "Hello"
    response = post_webhook(client, hook, envelope)
    assert response.status_code == 200
    assert Message.objects.get().text == "Hello"
    nulls = fixture("chat_transferred")
    nulls["payload"].update(queue=None, thread_id=None)
    nulls["additional_data"] = None
    assert post_webhook(client, hook, nulls).status_code == 200


def test_unknown_fields_are_accepted(client, hook):
    envelope = with_event(fixture("incoming_event_message"), brand_new_field={"x": 1})
    envelope["payload"]["another"] = [1, 2]
    assert post_webhook(client, hook, envelope).status_code == 200


def test_only_post(client, hook):
    response = client.get(hook.webhook_path)
    assert response.status_code == 405
    assert response.json()["error"]["type"] == "validation_error"


@pytest.mark.parametrize("action", ["user_removed_from_chat", "event_updated", "chat_properties_updated", "brand_new"])
def test_unknown_actions_are_answered_200_and_store_nothing(client, hook, action, caplog):
    """Like Zulip's integrations: what we do not handle is acknowledged (so LiveChat does not
    retry it) and deliberately ignored, with a log line saying so."""
    envelope = fixture("incoming_event_message")
    envelope["action"] = action
    envelope["payload"] = {"chat_id": "PJ0MRSHTDG", "thread_id": "PGDGHT5G", "anything": {"goes": [1]}}
    with caplog.at_level(logging.INFO, logger="bridge"):
        response = post_webhook(client, hook, envelope)
    assert response.status_code == 200
    assert response.json() == {"result": "ignored"}
    assert nothing_stored()
    assert action in caplog.text


@pytest.mark.parametrize("chat_id, thread_id", [("OTHERCHAT1", "PGDGHT5G"), ("PJ0MRSHTDG", "OLDTHREAD")])
def test_chats_the_console_did_not_start_are_ignored(client, hook, chat_id, thread_id, caplog):
    envelope = fixture("incoming_event_message")
    envelope["payload"].update(chat_id=chat_id, thread_id=thread_id)
    with caplog.at_level(logging.INFO, logger="bridge"):
        assert webhook_outcome(client, hook, envelope) == "ignored"
    assert nothing_applied()
    assert chat_id in caplog.text


def test_another_integrations_chat_is_not_ours(client, hook):
    other = make_integration(slug="globex", webhook_secret="globex-secret").integration
    assert webhook_outcome(client, other, fixture("incoming_event_message", secret="globex-secret")) == "ignored"
    assert nothing_applied()


def test_the_secret_is_not_kept_in_the_audit_trail(client, hook):
    post_webhook(client, hook, fixture("chat_transferred_queued"))
    event = SessionEvent.objects.get(kind="transferred")
    assert "secret_key" not in event.raw
    assert event.raw["payload"]["queue"]["position"] == 42
    assert WEBHOOK_SECRET not in json.dumps(list(SessionEvent.objects.values("raw", "data")))


@pytest.mark.django_db(transaction=True)
def test_logs_never_contain_the_webhook_or_callback_secret(client, bot_receiver, caplog, settings):  # noqa: F811
    settings.CALLBACK_RETRY_SCHEDULE = [0]
    integration = make_integration(webhook_secret=WEBHOOK_SECRET, callback_url=bot_receiver.url).integration
    make_session(integration)
    callback_secret = integration.callback_secret
    key_part = callback_secret.removeprefix("whsec_")
    bot_receiver.fail_next(1, status=500)
    with caplog.at_level(logging.DEBUG):
        post_webhook(client, integration, fixture("incoming_event_message", secret="not-the-secret"))
        post_webhook(client, integration, b'{"secret_key": "' + WEBHOOK_SECRET.encode() + b'", broken')
        bad_types = fixture("incoming_event_message")
        bad_types["payload"]["event"]["id"] = 1
        post_webhook(client, integration, bad_types)
        for name in ("user_added_to_chat", "incoming_event_message", "incoming_event_internal_note",
                     "chat_transferred_queued", "chat_deactivated"):
            post_webhook(client, integration, fixture(name))
        from bridge.services.callbacks import kick_due_deliveries

        kick_due_deliveries()
    assert len(bot_receiver.received()) >= 4  # the callbacks did go out, with a retry
    assert caplog.text  # and there was plenty to log
    for secret in (WEBHOOK_SECRET, callback_secret, key_part):
        assert secret not in caplog.text


def test_a_foreign_organization_id_is_accepted_but_logged(client, hook, caplog):
    envelope = fixture("incoming_event_message")
    envelope["organization_id"] = "someone-else"
    with caplog.at_level(logging.WARNING, logger="bridge"):
        assert webhook_outcome(client, hook, envelope) == "processed"
    assert "someone-else" in caplog.text
