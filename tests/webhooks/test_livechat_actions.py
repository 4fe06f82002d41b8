"""Each LiveChat action, replayed from recorded payloads (tests/fixtures/livechat/*.json):
what it does to the session, the transcript, the audit trail and the bot's callbacks."""
import copy

import pytest

from bridge.models import Delivery, HitlSession, Message, SessionEvent, WebhookReceipt
from tests.conftest import make_integration
from tests.webhooks.helpers import (
    AGENT_ID,
    CUSTOMER_ID,
    WEBHOOK_SECRET,
    fixture,
    make_session,
    webhook_outcome,
    with_event,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def integration(db):
    return make_integration(
        webhook_secret=WEBHOOK_SECRET, callback_url="https://bot.example.com/hitl", group_id=0
    ).integration


@pytest.fixture
def session(integration):
    return make_session(integration)


@pytest.fixture
def send(client, integration):
    def send(envelope):
        return webhook_outcome(client, integration, envelope)

    return send


def callbacks(type_=None):
    rows = Delivery.objects.order_by("id")
    if type_:
        rows = rows.filter(type=type_)
    return [d.payload for d in rows]


# ---- incoming_event ------------------------------------------------------------------------


def test_agent_message_becomes_a_transcript_row_and_a_callback(send, session):
    assert send(fixture("incoming_event_message")) == "processed"
    message = Message.objects.get()
    assert (message.direction, message.author, message.kind) == ("to_bot", "agent", "text")
    assert message.text == "Hi, I'm John. How can I help?"
    assert message.delivery_state == "received"
    assert message.livechat_event_id == "PGDGHT5G_3"
    assert message.agent_id == AGENT_ID
    assert message.internal is False

    [callback] = callbacks()
    assert callback["type"] == "agent.message"
    assert callback["data"]["session_id"] == str(session.pk)
    assert callback["data"]["conversation_id"] == "conv-1"
    assert callback["data"]["user_external_id"] == "u-42"
    body = callback["data"]["message"]
    assert body["id"] == message.pk
    assert body["type"] == "text"
    assert body["text"] == message.text
    assert body["url"] == ""
    assert body["agent"] == {"id": AGENT_ID, "name": ""}
    assert body["livechat_event_id"] == "PGDGHT5G_3"


def test_first_agent_reply_is_recorded_once(send, session):
    send(fixture("incoming_event_message"))
    session.refresh_from_db()
    first = session.first_agent_reply_at
    assert first is not None
    send(with_event(fixture("incoming_event_message"), id="PGDGHT5G_9", text="More"))
    session.refresh_from_db()
    assert session.first_agent_reply_at == first


def test_the_agent_name_comes_from_their_join(send, session):
    send(fixture("user_added_to_chat"))
    send(fixture("incoming_event_message"))
    assert callbacks("agent.message")[0]["data"]["message"]["agent"] == {"id": AGENT_ID, "name": "John Smith"}


def test_the_same_event_twice_is_stored_and_called_back_once(send, session):
    assert send(fixture("incoming_event_message")) == "processed"
    assert send(fixture("incoming_event_message")) == "duplicate"
    # Even if LiveChat changed something else in the envelope, the event id decides.
    changed = fixture("incoming_event_message")
    changed["additional_data"] = {"chat_presence_user_ids": ["x"]}
    assert send(changed) == "duplicate"
    assert Message.objects.count() == 1
    assert Delivery.objects.count() == 1
    assert WebhookReceipt.objects.count() == 1


def test_file_carries_url_and_metadata(send, session):
    send(fixture("incoming_event_file"))
    message = Message.objects.get()
    assert message.kind == "image"  # content type image/png
    assert message.url.endswith("/invoice.png")
    assert message.text == "invoice.png"
    assert message.payload["content_type"] == "image/png"
    body = callbacks()[0]["data"]["message"]
    assert body["type"] == "image"
    assert body["url"] == message.url
    assert body["file"] == {
        "name": "invoice.png", "content_type": "image/png", "size": 123444, "width": 640, "height": 480,
        "thumbnail_url": message.payload["thumbnail_url"], "alternative_text": "Your invoice",
    }


def test_a_non_image_file_is_a_file(send, session):
    send(with_event(fixture("incoming_event_file"), content_type="application/pdf", name="terms.pdf",
                    url="https://cdn.livechat-files.com/terms.pdf"))
    body = callbacks()[0]["data"]["message"]
    assert (body["type"], body["text"]) == ("file", "terms.pdf")
    assert body["url"] == "https://cdn.livechat-files.com/terms.pdf"


def test_rich_message_has_a_text_rendering_and_its_elements(send, session):
    send(fixture("incoming_event_rich_message"))
    message = Message.objects.get()
    assert message.kind == "rich"
    assert message.text == "Did this solve your problem?\nPick one\n[Yes] | [No] | [Docs]"
    body = callbacks()[0]["data"]["message"]
    assert body["type"] == "rich"
    assert body["text"] == message.text
    assert body["rich"]["template_id"] == "cards"
    assert body["rich"]["elements"][0]["buttons"][2]["value"] == "https://example.com/docs"


def test_internal_note_is_audit_only(send, session):
    assert send(fixture("incoming_event_internal_note")) == "processed"
    assert Message.objects.count() == 0
    assert Delivery.objects.count() == 0
    note = SessionEvent.objects.get(kind="note")
    assert note.actor == AGENT_ID
    assert note.data["text"] == "Customer is a VIP, offer the discount."
    assert send(fixture("incoming_event_internal_note")) == "duplicate"
    assert SessionEvent.objects.filter(kind="note").count() == 1


def test_system_message_is_audit_only(send, session):
    send(fixture("incoming_event_system_message"))
    assert Message.objects.count() == 0
    assert Delivery.objects.count() == 0
    event = SessionEvent.objects.get(kind="system_message")
    assert event.data["system_message_type"] == "routing.assigned"
    assert event.summary == "John Smith joined the chat."


@pytest.mark.parametrize("author", [CUSTOMER_ID, "0a1b2c3d-0000-4000-8000-000000000001", None])
def test_our_customers_own_events_are_not_echoed(send, session, author):
    envelope = with_event(fixture("incoming_event_message"), author_id=author)
    assert send(envelope) == "ignored"
    assert Message.objects.count() == 0
    assert Delivery.objects.count() == 0


def test_prechat_form_and_custom_events_are_not_forwarded(send, session):
    assert send(fixture("incoming_event_filled_form")) == "ignored"  # the customer's form
    assert send(fixture("incoming_event_custom")) == "ignored"
    assert Message.objects.count() == 0
    assert Delivery.objects.count() == 0


def test_a_bot_agent_is_an_agent(send, session):
    bot_agent = "5c4f0e8d1b2a3c4d5e6f708192a3b4c5"
    send(with_event(fixture("incoming_event_message"), author_id=bot_agent))
    assert Message.objects.get().agent_id == bot_agent


def test_without_a_callback_url_the_transcript_still_gets_the_message(send, session, integration):
    integration.callback_url = ""
    integration.save()
    send(fixture("incoming_event_message"))
    assert Message.objects.count() == 1
    assert Delivery.objects.count() == 0


# ---- user_added_to_chat --------------------------------------------------------------------


def test_agent_join_assigns_the_session(send, session):
    assert send(fixture("user_added_to_chat")) == "processed"
    session.refresh_from_db()
    assert session.status == "assigned"
    assert (session.agent_id, session.agent_name) == (AGENT_ID, "John Smith")
    assert session.agent_avatar == "https://cdn.livechat-files.com/api/file/lc/avatars/smith.png"
    assert session.assigned_at is not None
    event = SessionEvent.objects.get(kind="assigned")
    assert event.actor == AGENT_ID
    assert "John Smith" in event.summary
    [callback] = callbacks()
    assert callback["type"] == "session.assigned"
    assert callback["data"]["agent"] == {
        "id": AGENT_ID, "name": "John Smith", "avatar": "https://cdn.livechat-files.com/api/file/lc/avatars/smith.png",
    }


def test_the_same_agent_joining_twice_changes_nothing(send, session):
    send(fixture("user_added_to_chat"))
    again = fixture("user_added_to_chat")
    again["payload"]["reason"] = "other"  # a different webhook, the same state change
    assert send(again) == "duplicate"
    assert SessionEvent.objects.filter(kind="assigned").count() == 1
    assert len(callbacks("session.assigned")) == 1


def test_another_agent_joining_reassigns(send, session):
    send(fixture("user_added_to_chat"))
    first_assigned_at = HitlSession.objects.get().assigned_at
    jane = fixture("user_added_to_chat")
    jane["payload"]["user"].update(id="jane@example.com", name="Jane Doe", avatar="//cdn.example.com/jane.png")
    assert send(jane) == "processed"
    session.refresh_from_db()
    assert (session.agent_id, session.agent_name) == ("jane@example.com", "Jane Doe")
    assert session.agent_avatar == "https://cdn.example.com/jane.png"
    assert session.assigned_at == first_assigned_at
    assert [c["data"]["agent"]["name"] for c in callbacks("session.assigned")] == ["John Smith", "Jane Doe"]
    assert SessionEvent.objects.filter(kind="assigned").last().data["previous_agent"]["id"] == AGENT_ID


def test_non_agents_and_supervisors_joining_change_nothing(send, session):
    customer = fixture("user_added_to_chat")
    customer["payload"]["user_type"] = "customer"
    customer["payload"]["user"].update(id=CUSTOMER_ID, type="customer")
    assert send(customer) == "ignored"
    supervisor = fixture("user_added_to_chat")
    supervisor["payload"]["user"]["visibility"] = "agents"
    assert send(supervisor) == "ignored"
    assert HitlSession.objects.get().status == "waiting"
    assert Delivery.objects.count() == 0


def test_a_join_after_close_changes_nothing(send, session):
    send(fixture("chat_deactivated_by_router"))
    assert send(fixture("user_added_to_chat")) == "ignored"
    assert HitlSession.objects.get().status == "closed"
    assert callbacks("session.assigned") == []


# ---- chat_transferred ----------------------------------------------------------------------


def test_queued_transfer_keeps_the_session_open_and_waiting(send, session):
    send(fixture("user_added_to_chat"))
    assert send(fixture("chat_transferred_queued")) == "processed"
    session.refresh_from_db()
    assert session.status == "waiting"
    assert session.agent_id == ""
    event = SessionEvent.objects.get(kind="transferred")
    assert event.actor == AGENT_ID
    assert event.data["from"] == {"agent_ids": [AGENT_ID], "group_ids": [0]}
    assert event.data["to"] == {"agent_ids": [], "group_ids": [5]}
    assert event.data["queue"] == {"position": 42, "wait_time": 1337, "queued_at": "2025-08-11T09:45:18.909000Z"}
    assert "queue position 42" in event.summary
    [callback] = callbacks("session.transferred")
    assert callback["data"]["from"] == {"agent_ids": [AGENT_ID], "group_ids": [0]}
    assert callback["data"]["to"] == {"agent_ids": [], "group_ids": [5]}
    assert callback["data"]["reason"] == "manual"
    assert callback["data"]["queue"]["position"] == 42
    assert callback["data"]["status"] == "waiting"


def test_transfer_without_queue(send, session):
    send(fixture("chat_transferred"))
    [callback] = callbacks("session.transferred")
    assert callback["data"]["queue"] is None
    assert HitlSession.objects.get().is_open


def test_transfer_without_thread_id_goes_to_the_open_session(send, session):
    envelope = fixture("chat_transferred_queued")
    del envelope["payload"]["thread_id"]
    assert send(envelope) == "processed"
    assert SessionEvent.objects.filter(kind="transferred", session=session).count() == 1


def test_the_same_transfer_twice_changes_nothing(send, session):
    send(fixture("chat_transferred_queued"))
    later = fixture("chat_transferred_queued")
    later["payload"]["queue"]["position"] = 41  # the same transfer, reported again
    assert send(later) == "duplicate"
    assert len(callbacks("session.transferred")) == 1


def test_a_later_transfer_back_to_the_same_group_is_new(send, session):
    send(fixture("chat_transferred_queued"))
    jane = fixture("user_added_to_chat")
    jane["payload"]["user"].update(id="jane@example.com", name="Jane Doe")
    send(jane)
    again = fixture("chat_transferred_queued")
    again["payload"]["queue"]["position"] = 3
    assert send(again) == "processed"
    transfers = callbacks("session.transferred")
    assert len(transfers) == 2
    assert transfers[1]["data"]["from"] == {"agent_ids": ["jane@example.com"], "group_ids": [5]}


def test_transfer_to_the_agent_who_already_joined_keeps_them(send, session):
    jane = fixture("user_added_to_chat")
    jane["payload"]["user"].update(id="jane@example.com", name="Jane Doe")
    send(jane)
    to_jane = fixture("chat_transferred")
    to_jane["payload"]["transferred_to"] = {"agent_ids": ["jane@example.com"]}
    send(to_jane)
    session.refresh_from_db()
    assert (session.status, session.agent_id) == ("assigned", "jane@example.com")


def test_transfer_of_a_closed_session_changes_nothing(send, session):
    send(fixture("chat_deactivated"))
    assert send(fixture("chat_transferred_queued")) == "ignored"
    assert callbacks("session.transferred") == []


# ---- chat_deactivated ----------------------------------------------------------------------


def test_agent_closes_the_chat(send, session):
    assert send(fixture("chat_deactivated")) == "processed"
    session.refresh_from_db()
    assert session.status == "closed"
    assert session.closed_by == AGENT_ID
    assert session.closed_at is not None
    assert SessionEvent.objects.get(kind="closed").actor == AGENT_ID
    [callback] = callbacks("session.closed")
    assert callback["data"]["closed_by"] == AGENT_ID
    assert callback["data"]["reason"]


def test_router_closes_the_chat(send, session):
    send(fixture("chat_deactivated_by_router"))
    session.refresh_from_db()
    assert session.closed_by == "router"
    assert callbacks("session.closed")[0]["data"]["closed_by"] == "router"


def test_our_customer_closing_the_chat_is_the_bot(send, session):
    envelope = fixture("chat_deactivated")
    envelope["payload"]["user_id"] = CUSTOMER_ID
    send(envelope)
    assert HitlSession.objects.get().closed_by == "bot"


def test_an_already_closed_thread_changes_nothing(send, session):
    send(fixture("chat_deactivated"))
    assert send(fixture("chat_deactivated_by_router")) == "duplicate"
    assert HitlSession.objects.get().closed_by == AGENT_ID
    assert len(callbacks("session.closed")) == 1
    assert SessionEvent.objects.filter(kind="closed").count() == 1


def test_a_new_thread_of_the_chat_is_another_session(send, integration, session):
    send(fixture("chat_deactivated"))
    second = make_session(integration, thread_id="NEWTHRD1", conversation_id="conv-1")
    envelope = with_event(fixture("incoming_event_message"), id="NEWTHRD1_2")
    envelope["payload"]["thread_id"] = "NEWTHRD1"
    send(envelope)
    assert Message.objects.get().session == second
    closing = fixture("chat_deactivated")
    closing["payload"]["thread_id"] = "NEWTHRD1"
    assert send(closing) == "processed"
    second.refresh_from_db()
    assert second.status == "closed"


# ---- incoming_chat and chat_access_updated: the audit trail --------------------------------


def test_incoming_chat_is_recorded(send, session):
    assert send(fixture("incoming_chat")) == "processed"
    event = SessionEvent.objects.get(kind="incoming_chat")
    assert event.data["thread_id"] == "PGDGHT5G"
    assert Delivery.objects.count() == 0
    assert HitlSession.objects.get().status == "waiting"


def test_incoming_chat_routed_to_an_agent_assigns(send, session):
    envelope = fixture("incoming_chat")
    envelope["payload"]["chat"]["users"].append(
        {"id": "jane@example.com", "name": "Jane Doe", "type": "agent", "present": True, "visibility": "all"}
    )
    send(envelope)
    session.refresh_from_db()
    assert (session.status, session.agent_name) == ("assigned", "Jane Doe")
    assert callbacks("session.assigned")[0]["data"]["agent"]["id"] == "jane@example.com"


def test_chat_access_updated_is_recorded(send, session):
    send(fixture("chat_access_updated"))
    assert SessionEvent.objects.get(kind="access_updated").data == {"group_ids": [5]}
    assert Delivery.objects.count() == 0


# ---- every recorded fixture is understood --------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "chat_access_updated", "chat_deactivated", "chat_deactivated_by_router", "chat_transferred",
        "chat_transferred_queued", "incoming_chat", "incoming_event_custom", "incoming_event_file",
        "incoming_event_filled_form", "incoming_event_internal_note", "incoming_event_message",
        "incoming_event_rich_message", "incoming_event_system_message", "user_added_to_chat",
    ],
)
def test_every_fixture_is_accepted_and_a_retry_changes_nothing(send, session, name):
    envelope = fixture(name)
    first = send(copy.deepcopy(envelope))
    assert first in ("processed", "ignored")
    counts = (Message.objects.count(), SessionEvent.objects.count(), Delivery.objects.count())
    assert send(envelope) in ("duplicate", "ignored")
    assert (Message.objects.count(), SessionEvent.objects.count(), Delivery.objects.count()) == counts


# ---- retries versus new occurrences --------------------------------------------------------


def test_an_identical_join_long_after_is_a_new_one(send, session):
    from datetime import timedelta

    from django.utils import timezone

    from bridge.services.webhooks import RETRY_WINDOW

    send(fixture("user_added_to_chat"))  # Smith
    jane = fixture("user_added_to_chat")
    jane["payload"]["user"].update(id="jane@example.com", name="Jane Doe")
    send(jane)
    assert send(fixture("user_added_to_chat")) == "duplicate"  # within the retry window: a retry
    WebhookReceipt.objects.update(received_at=timezone.now() - RETRY_WINDOW - timedelta(seconds=1))
    assert send(fixture("user_added_to_chat")) == "processed"  # Smith is back
    session.refresh_from_db()
    assert session.agent_id == AGENT_ID
    assert [c["data"]["agent"]["id"] for c in callbacks("session.assigned")] == [AGENT_ID, "jane@example.com", AGENT_ID]


def test_an_old_event_id_stays_a_duplicate(send, session):
    from datetime import timedelta

    from django.utils import timezone

    send(fixture("incoming_event_message"))
    WebhookReceipt.objects.update(received_at=timezone.now() - timedelta(days=3))
    assert send(fixture("incoming_event_message")) == "duplicate"
    assert Message.objects.count() == 1


def test_an_unknown_chat_while_a_session_is_starting_waits_for_it(client, integration, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    from bridge.models import EndUser
    from bridge.services.webhooks import SWEEP_GRACE, kick_pending_webhooks

    end_user = EndUser.objects.create(integration=integration, external_id="u-1")
    starting = HitlSession.objects.create(integration=integration, end_user=end_user, conversation_id="c")
    assert webhook_outcome(client, integration, fixture("incoming_chat")) == "pending"
    joined = fixture("user_added_to_chat")
    assert webhook_outcome(client, integration, joined) == "pending"  # behind the first, in order
    assert SessionEvent.objects.count() == 0 and Delivery.objects.count() == 0
    # POST /sessions stores the chat id; the sweep (every few seconds) hands the chat to a worker.
    HitlSession.objects.filter(pk=starting.pk).update(status="waiting", chat_id="PJ0MRSHTDG", thread_id="PGDGHT5G")
    WebhookReceipt.objects.update(received_at=timezone.now() - SWEEP_GRACE - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert kick_pending_webhooks() == 1
    assert list(WebhookReceipt.objects.order_by("id").values_list("outcome", flat=True)) == ["processed", "processed"]
    assert [e.kind for e in SessionEvent.objects.order_by("id")] == ["incoming_chat", "assigned"]
    assert [c["type"] for c in callbacks()] == ["session.assigned"]


def test_an_unknown_chat_stops_waiting_when_the_start_window_is_over(
    client, integration, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from bridge.models import EndUser
    from bridge.services.webhooks import START_WINDOW, kick_pending_webhooks

    end_user = EndUser.objects.create(integration=integration, external_id="u-1")
    HitlSession.objects.create(integration=integration, end_user=end_user, conversation_id="c")
    assert webhook_outcome(client, integration, fixture("incoming_chat")) == "pending"
    WebhookReceipt.objects.update(received_at=timezone.now() - START_WINDOW - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        kick_pending_webhooks()
    assert WebhookReceipt.objects.get().outcome == "ignored"
    assert SessionEvent.objects.count() == 0


def test_a_stale_pending_session_does_not_hold_up_foreign_chats(client, integration):
    from datetime import timedelta

    from django.utils import timezone

    from bridge.models import EndUser

    end_user = EndUser.objects.create(integration=integration, external_id="u-1")
    stuck = HitlSession.objects.create(integration=integration, end_user=end_user, conversation_id="c")
    HitlSession.objects.filter(pk=stuck.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert webhook_outcome(client, integration, fixture("incoming_chat")) == "ignored"


def test_purged_receipts_still_change_nothing_twice(send, session):
    from datetime import timedelta

    from django.utils import timezone

    from bridge.services.webhooks import purge_webhook_receipts

    for name in ("user_added_to_chat", "incoming_event_message", "incoming_event_internal_note",
                 "incoming_event_system_message", "chat_transferred_queued", "chat_deactivated"):
        send(fixture(name))
    counts = (Message.objects.count(), SessionEvent.objects.count(), Delivery.objects.count())
    assert purge_webhook_receipts() == 0  # all recent
    WebhookReceipt.objects.update(received_at=timezone.now() - timedelta(days=3))
    assert purge_webhook_receipts() == 6
    for name in ("user_added_to_chat", "incoming_event_message", "incoming_event_internal_note",
                 "incoming_event_system_message", "chat_transferred_queued", "chat_deactivated"):
        assert send(fixture(name)) in ("duplicate", "ignored")
    assert (Message.objects.count(), SessionEvent.objects.count(), Delivery.objects.count()) == counts
