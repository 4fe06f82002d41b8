"""POST/GET /api/v1/sessions/{id}/messages against the LiveChat sandbox."""
import pytest

from bridge.models import EndUser, HitlSession, Message, SessionEvent
from bridge.services.outbound import kick_due_messages

from .conftest import customer_texts, session_of

pytestmark = pytest.mark.django_db(transaction=True)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 2048


def sent_texts(lc, body):
    """The customer's message texts after the opening events."""
    return customer_texts(lc, body["livechat_chat_id"])[1:]


def test_three_messages_arrive_as_three_events_in_order(bot, lc):
    body = bot.start()
    answers = [bot.send(body["id"], text) for text in ("one", "two", "three")]

    assert [a.status_code for a in answers] == [202, 202, 202]
    assert all(set(a.json()) >= {"id", "status"} for a in answers)
    assert sent_texts(lc, body) == ["one", "two", "three"]
    rows = Message.objects.filter(session_id=body["id"], author="user", payload={}).order_by("id")
    assert [(m.text, m.delivery_state, m.attempts) for m in rows] == [
        ("one", "sent", 1), ("two", "sent", 1), ("three", "sent", 1)
    ]
    assert all(m.livechat_event_id for m in rows)


def test_the_same_external_id_twice_is_one_event(bot, lc):
    body = bot.start()
    first = bot.send(body["id"], "hello", external_id="m-1")
    second = bot.send(body["id"], "hello", external_id="m-1")

    assert first.status_code == 202 and second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert sent_texts(lc, body) == ["hello"]
    assert Message.objects.filter(session_id=body["id"], external_id="m-1").count() == 1


def test_livechat_answering_503_twice_delivers_each_message_once_in_order(bot, lc):
    body = bot.start()
    lc.add_fault("send_event", count=2, error_type="service_unavailable")

    for text in ("one", "two", "three"):
        assert bot.send(body["id"], text).status_code == 202
    for _ in range(5):
        kick_due_messages()

    assert sent_texts(lc, body) == ["one", "two", "three"]
    assert [r["status"] for r in lc.requests("send_event")] == [503, 503, 200, 200, 200]
    head = Message.objects.get(session_id=body["id"], text="one")
    assert head.attempts == 3 and head.delivery_state == "sent" and head.last_error == ""


def test_a_later_message_never_overtakes_an_earlier_unsent_one(bot, lc, settings):
    settings.LIVECHAT_RETRY_SCHEDULE = [60]
    body = bot.start()
    lc.add_fault("send_event", count=1, error_type="service_unavailable")

    bot.send(body["id"], "one")
    bot.send(body["id"], "two")
    kick_due_messages()

    assert sent_texts(lc, body) == []  # "one" waits for its retry; "two" waits behind it
    head = Message.objects.get(session_id=body["id"], text="one")
    assert head.delivery_state == "pending" and head.next_attempt_at is not None
    assert Message.objects.get(session_id=body["id"], text="two").attempts == 0

    Message.objects.filter(pk=head.pk).update(next_attempt_at=head.created_at)  # the minute has passed
    assert kick_due_messages() == 1
    assert sent_texts(lc, body) == ["one", "two"]


def test_an_exhausted_retry_schedule_fails_the_message_and_the_next_goes_on(bot, lc):
    body = bot.start()
    lc.add_fault("send_event", count=4, error_type="service_unavailable")  # first try + 3 retries
    bot.send(body["id"], "doomed")
    bot.send(body["id"], "fine")
    for _ in range(5):
        kick_due_messages()

    doomed = Message.objects.get(session_id=body["id"], text="doomed")
    assert doomed.delivery_state == "failed" and doomed.attempts == 4
    assert "service_unavailable" in doomed.last_error and "gave up after 4 attempts" in doomed.last_error
    assert session_of(body).events.filter(kind=SessionEvent.Kind.ERROR).count() == 1
    assert sent_texts(lc, body) == ["fine"]
    listed = bot.get(f"sessions/{body['id']}/messages").json()["results"]
    assert [(m["text"], m["status"]) for m in listed if m["author"] == "user"][-2:] == [
        ("doomed", "failed"), ("fine", "sent")
    ]


def test_an_expired_token_is_renewed_for_the_same_customer_and_nothing_is_lost(bot, lc):
    body = bot.start()
    user = EndUser.objects.get(integration=bot.integration)
    customer_id, old_token = user.livechat_customer_id, user.customer_token
    bot.send(body["id"], "before")

    assert lc.expire_tokens() >= 1
    bot.send(body["id"], "after")

    user.refresh_from_db()
    assert user.livechat_customer_id == customer_id
    assert user.customer_token != old_token
    assert sent_texts(lc, body) == ["before", "after"]
    assert len(lc.state.customers) == 1
    assert [r["status"] for r in lc.requests("send_event")] == [200, 401, 200]


def test_a_chat_closed_in_livechat_closes_the_session_and_fails_the_message(bot, lc):
    body = bot.start()
    lc.close(body["livechat_chat_id"], agent_id="smith@example.com")  # the webhook never reached us

    response = bot.send(body["id"], "anyone there?")

    assert response.status_code == 202
    message = Message.objects.get(pk=response.json()["id"])
    assert message.delivery_state == "failed"
    assert "no longer active" in message.last_error and "chat_inactive" in message.last_error
    session = session_of(body)
    assert session.status == "closed" and session.closed_by == "livechat"
    assert session.events.filter(kind=SessionEvent.Kind.CLOSED).count() == 1


def test_a_closed_session_refuses_new_messages_with_409(bot, lc):
    body = bot.start()
    bot.post(f"sessions/{body['id']}/stop")
    response = bot.send(body["id"], "too late")
    assert response.status_code == 409
    assert response.json()["error"]["type"] == "conflict"
    assert "closed" in response.json()["error"]["message"]


def test_an_image_is_fetched_uploaded_and_sent_as_a_file_event(bot, lc, media_server):
    body = bot.start()
    url = media_server.serve("/pics/receipt.png", PNG, "image/png")

    response = bot.post(f"sessions/{body['id']}/messages", {"type": "image", "url": url, "text": "my receipt"})

    assert response.status_code == 202
    events = sent_texts(lc, body)
    assert len(events) == 1 and events[0]["type"] == "file"
    assert events[0]["name"] == "receipt.png" and events[0]["content_type"] == "image/png"
    assert events[0]["size"] == len(PNG)
    assert events[0]["url"].startswith(lc.url + "/files/")
    upload = lc.requests("upload_file")[0]["json"]["file"]
    assert upload == {"filename": "receipt.png", "content_type": "image/png", "size": len(PNG)}
    message = Message.objects.get(pk=response.json()["id"])
    assert message.kind == "image" and message.delivery_state == "sent"


def test_a_file_over_10_mb_is_refused_without_reading_it_all(bot, lc, media_server):
    body = bot.start()
    url = media_server.serve("/big.bin", b"\0" * (30 * 1024 * 1024), declare_length=False)

    response = bot.post(f"sessions/{body['id']}/messages", {"type": "file", "url": url})

    message = Message.objects.get(pk=response.json()["id"])
    assert message.delivery_state == "failed"
    assert "larger than 10 MB" in message.last_error
    assert media_server.written["/big.bin"] < 20 * 1024 * 1024
    assert lc.requests("upload_file") == []


def test_a_file_declared_over_10_mb_is_refused_before_the_body(bot, lc, media_server):
    body = bot.start()
    url = media_server.serve("/big.pdf", b"\0" * (11 * 1024 * 1024), "application/pdf")
    response = bot.post(f"sessions/{body['id']}/messages", {"type": "file", "url": url})
    assert "larger than 10 MB" in Message.objects.get(pk=response.json()["id"]).last_error


def test_a_media_url_on_a_private_network_is_refused(bot, lc, media_server, settings):
    settings.CALLBACK_ALLOW_PRIVATE_NETWORKS = False
    body = bot.start()
    url = media_server.serve("/pics/x.png", PNG, "image/png")

    response = bot.post(f"sessions/{body['id']}/messages", {"type": "image", "url": url})

    message = Message.objects.get(pk=response.json()["id"])
    assert message.delivery_state == "failed"
    assert "non-public address" in message.last_error
    assert media_server.hits == []


def test_a_missing_media_file_fails_the_message(bot, lc, media_server):
    body = bot.start()
    response = bot.post(f"sessions/{body['id']}/messages", {"type": "file", "url": media_server.url + "/nope"})
    message = Message.objects.get(pk=response.json()["id"])
    assert message.delivery_state == "failed" and "HTTP 404" in message.last_error


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"type": "text"}, "text"),
        ({"type": "text", "text": "   "}, "text"),
        ({"type": "image"}, "url"),
        ({"type": "file", "url": "ftp://example.com/x"}, "url"),
        ({"type": "video", "url": "https://example.com/x"}, "type"),
        ({"type": "text", "text": "é" * 8001}, "text"),
    ],
)
def test_bad_messages_are_400_naming_the_field(bot, lc, payload, field):
    body = bot.start()
    response = bot.post(f"sessions/{body['id']}/messages", payload)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "validation_error"
    assert field in error["details"]["fields"]
    assert error["message"].startswith(f"{field}:")


def test_polling_returns_user_and_agent_messages_in_order_never_internal_notes(bot, lc):
    body = bot.start()
    session = session_of(body)
    mine = bot.send(body["id"], "question").json()
    agent = Message.objects.create(session=session, direction="to_bot", author="agent", text="answer",
                                   agent_id="smith@example.com", delivery_state="received")
    Message.objects.create(session=session, direction="to_bot", author="agent", text="psst, internal",
                           internal=True, agent_id="smith@example.com", delivery_state="received")
    HitlSession.objects.filter(pk=session.pk).update(agent_id="smith@example.com", agent_name="John Smith")

    everything = bot.get(f"sessions/{body['id']}/messages").json()
    assert [m["text"] for m in everything["results"]] == ["question", "answer"]
    assert everything["has_more"] is False
    reply = everything["results"][1]
    assert reply["direction"] == "to_bot" and reply["author"] == "agent"
    assert reply["agent"] == {"id": "smith@example.com", "name": "John Smith"}

    newer = bot.get(f"sessions/{body['id']}/messages", after=mine["id"]).json()["results"]
    assert [m["id"] for m in newer] == [agent.pk]
    assert bot.get(f"sessions/{body['id']}/messages", after=agent.pk + 100).json()["results"] == []

    page = bot.get(f"sessions/{body['id']}/messages", limit=1).json()
    assert len(page["results"]) == 1 and page["has_more"] is True


def test_polling_with_a_bad_after_is_400(bot, lc):
    body = bot.start()
    response = bot.get(f"sessions/{body['id']}/messages", after="yesterday")
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("after:")
