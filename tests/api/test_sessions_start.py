"""POST /api/v1/sessions against the LiveChat sandbox: the chat, its opening events, failures."""
import json

import pytest
from django.db import connection

from bridge.models import EndUser, HitlSession, Message, SessionEvent
from bridge.services import sessions as sessions_service
from bridge.services.sessions import MAX_EVENT_BYTES

from .conftest import GROUP_ID, customer_texts, session_of

pytestmark = pytest.mark.django_db(transaction=True)

TRANSCRIPT = [
    {"author": "user", "text": "Hi, my order 1001 never arrived"},
    {"author": "bot", "text": "Sorry to hear that! Let me check."},
    {"author": "user", "text": "It's been two weeks"},
    {"author": "bot", "text": "I'll get you a human."},
]


def test_start_opens_a_chat_in_the_group_with_the_whole_story_in_order(bot, lc):
    body = bot.start(
        "conv-1",
        title="Order 1001 missing",
        description="The customer says the parcel never arrived.",
        transcript=TRANSCRIPT,
        metadata={"order_id": "1001", "vip": True},
    )

    assert body["status"] == "waiting"
    assert body["conversation_id"] == "conv-1"
    assert set(body) >= {"id", "status", "conversation_id", "livechat_chat_id", "created_at"}
    chats = lc.chats()
    assert [c["id"] for c in chats] == [body["livechat_chat_id"]]
    chat = lc.chat(body["livechat_chat_id"])
    assert chat["access"]["group_ids"] == [GROUP_ID]
    assert chat["active"] is True
    texts = customer_texts(lc, body["livechat_chat_id"])
    assert texts == [
        "Order 1001 missing\n\nThe customer says the parcel never arrived.",
        "Conversation with the bot so far:\n"
        "User: Hi, my order 1001 never arrived\n"
        "Bot: Sorry to hear that! Let me check.\n"
        "User: It's been two weeks\n"
        "Bot: I'll get you a human.",
    ]
    start = lc.requests("start_chat")[0]["json"]
    assert start["continuous"] is True and start["active"] is True

    customer = next(u for u in chat["users"] if u["type"] == "customer")
    assert customer["name"] == "Ada Lovelace"
    assert customer["email"] == "ada@example.com"
    assert customer["session_fields"] == [{"order_id": "1001"}, {"vip": "true"}]


def test_start_stores_chat_thread_and_the_customer_identity_encrypted(bot, lc):
    body = bot.start("conv-1")
    session = session_of(body)
    assert session.chat_id == body["livechat_chat_id"] and session.thread_id
    assert session.status == HitlSession.Status.WAITING
    assert session.events.filter(kind=SessionEvent.Kind.STARTED, actor="bot").count() == 1

    user = EndUser.objects.get(integration=bot.integration, external_id="u-1")
    assert user.livechat_customer_id == lc.chat(session.chat_id)["users"][0]["id"]
    assert user.customer_token.startswith("dal:")
    assert user.customer_token_expires_at is not None
    assert set(json.loads(user.customer_cookies)) == {"__lc_cid", "__lc_cst"}
    with connection.cursor() as cursor:
        cursor.execute("SELECT customer_token, customer_cookies FROM bridge_enduser WHERE id = %s", [user.pk])
        raw_token, raw_cookies = cursor.fetchone()
    assert "dal:" not in raw_token and "__lc_cst" not in raw_cookies


def test_start_without_context_still_tells_the_agent_something(bot, lc):
    body = bot.start("conv-1")
    assert customer_texts(lc, body["livechat_chat_id"]) == ["The bot handed this conversation over to an agent."]


def test_a_long_transcript_is_split_under_livechats_16_kb_limit_and_kept_in_order(bot, lc):
    transcript = [{"author": "user" if i % 2 else "bot", "text": f"line {i} " + "é" * 700} for i in range(60)]
    transcript.append({"author": "user", "text": "x" * 40_000})  # one entry over the limit on its own
    body = bot.start("conv-1", transcript=transcript)

    texts = customer_texts(lc, body["livechat_chat_id"])
    assert len(texts) > 3
    assert all(len(text.encode()) <= MAX_EVENT_BYTES for text in texts)
    joined = "\n".join(texts)
    positions = [joined.index(f"line {i} ") for i in range(60)]
    assert positions == sorted(positions)
    assert joined.count("x") == 40_000


def test_the_transcript_is_kept_as_the_sessions_first_messages(bot, lc):
    transcript = [dict(TRANSCRIPT[0], created_at="2025-08-01T10:00:00Z"), *TRANSCRIPT[1:]]
    body = bot.start("conv-1", transcript=transcript)
    rows = list(Message.objects.filter(session_id=body["id"]).order_by("id"))
    assert [(m.author, m.text, m.delivery_state) for m in rows] == [
        (e["author"], e["text"], "sent") for e in TRANSCRIPT
    ]
    assert rows[0].payload == {"opening": True, "created_at": "2025-08-01T10:00:00+00:00"}


def test_a_known_user_can_be_named_by_id(bot, lc):
    user = bot.post("users", {"external_id": "u-9", "name": "Grace"}).json()
    response = bot.post("sessions", {"conversation_id": "conv-9", "user_id": user["id"]})
    assert response.status_code == 201
    assert session_of(response.json()).end_user_id == user["id"]


def test_an_open_session_of_the_conversation_is_a_409_naming_it(bot, lc):
    first = bot.start("conv-1")
    response = bot.post("sessions", {"conversation_id": "conv-1", "user": {"external_id": "u-1"}})
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["type"] == "conflict"
    assert error["details"]["session_id"] == first["id"]
    assert len(lc.chats()) == 1


def test_the_race_for_one_conversation_is_a_409_too(bot, lc, monkeypatch):
    first = bot.start("conv-1")
    real = sessions_service._open_session
    calls = []

    def blind_first_look(**kwargs):
        calls.append(kwargs)
        return None if len(calls) == 1 else real(**kwargs)  # as if the other request had not committed yet

    monkeypatch.setattr(sessions_service, "_open_session", blind_first_look)
    response = bot.post("sessions", {"conversation_id": "conv-1", "user": {"external_id": "u-1"}})
    assert response.status_code == 409
    assert response.json()["error"]["details"]["session_id"] == first["id"]
    assert HitlSession.objects.filter(conversation_id="conv-1").count() == 1


def test_transient_livechat_errors_are_retried_within_the_request(bot, lc):
    lc.add_fault("start_chat", count=2, error_type="service_unavailable")
    body = bot.start("conv-1")
    assert body["status"] == "waiting"
    assert len(lc.chats()) == 1
    assert [r["status"] for r in lc.requests("start_chat")] == [503, 503, 200]


def test_livechat_still_failing_is_a_502_and_a_failed_session(db, lc, sandbox_org, short_budget, webhook_receiver):
    from tests.conftest import make_integration

    from .conftest import Bot

    bot = Bot(make_integration("acme", "main", client_id=sandbox_org.client_id,
                               organization_id=sandbox_org.organization_id, agent_token=sandbox_org.agent_token,
                               group_id=GROUP_ID, callback_url=webhook_receiver.url))
    lc.add_fault("start_chat", count=100, error_type="service_unavailable")

    response = bot.post("sessions", {"conversation_id": "conv-1", "user": {"external_id": "u-1"}})

    assert response.status_code == 502
    error = response.json()["error"]
    assert error["type"] == "livechat_error"
    assert "service_unavailable" in error["message"]
    session = HitlSession.objects.get(pk=error["details"]["session_id"])
    assert session.status == HitlSession.Status.FAILED
    assert "service_unavailable" in session.last_error and "dal:" not in session.last_error
    assert session.events.filter(kind=SessionEvent.Kind.FAILED).count() == 1
    assert list(session.deliveries.values_list("type", flat=True)) == ["session.failed"]
    callback = webhook_receiver.wait_for(1)[0]
    assert callback["type"] == "session.failed" and callback["data"]["session_id"] == str(session.pk)
    assert lc.chats() == []

    # A failed session does not hold the conversation: the next try starts afresh.
    lc.state.faults.clear()
    again = bot.post("sessions", {"conversation_id": "conv-1", "user": {"external_id": "u-1"}})
    assert again.status_code == 201


def test_a_permanent_livechat_refusal_fails_at_once(db, lc, sandbox_org):
    from tests.conftest import make_integration

    from .conftest import Bot

    bot = Bot(make_integration("acme", "main", client_id=sandbox_org.client_id,
                               organization_id=sandbox_org.organization_id, agent_token=sandbox_org.agent_token,
                               group_id=99))
    response = bot.post("sessions", {"conversation_id": "conv-1", "user": {"external_id": "u-1"}})
    assert response.status_code == 502
    assert response.json()["error"]["details"]["livechat_error_type"] == "group_not_found"
    assert len(lc.requests("start_chat")) == 1


def test_a_second_handoff_of_the_conversation_after_the_first_closed_is_a_new_chat(bot, lc):
    first = bot.start("conv-1", transcript=TRANSCRIPT[:1])
    assert bot.post(f"sessions/{first['id']}/stop").status_code == 200

    second = bot.start("conv-1", title="Back again")

    assert second["id"] != first["id"]
    assert second["livechat_chat_id"] != first["livechat_chat_id"]
    assert len(lc.chats()) == 2
    assert customer_texts(lc, second["livechat_chat_id"]) == ["Back again"]
    # Same bot user, same LiveChat customer.
    first_chat, second_chat = lc.chat(first["livechat_chat_id"]), lc.chat(second["livechat_chat_id"])
    assert first_chat["users"][0]["id"] == second_chat["users"][0]["id"]
    assert first_chat["active"] is False and second_chat["active"] is True


def test_a_start_that_died_mid_way_stops_holding_the_conversation(bot, lc):
    from datetime import timedelta

    from django.utils import timezone

    from bridge.models import EndUser

    user = EndUser.objects.create(integration=bot.integration, external_id="u-1")
    stuck = HitlSession.objects.create(integration=bot.integration, end_user=user, conversation_id="conv-1")
    HitlSession.objects.filter(pk=stuck.pk).update(created_at=timezone.now() - timedelta(minutes=10))
    fresh = HitlSession.objects.create(integration=bot.integration, end_user=user, conversation_id="conv-2")

    assert sessions_service.fail_abandoned_starts() == 1

    stuck.refresh_from_db()
    fresh.refresh_from_db()
    assert stuck.status == "failed" and "interrupted" in stuck.last_error
    assert fresh.status == "pending"
    assert bot.start("conv-1")["status"] == "waiting"
