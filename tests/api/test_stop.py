"""POST /api/v1/sessions/{id}/stop and GET /api/v1/sessions/{id} against the LiveChat sandbox."""
import pytest

from bridge.models import HitlSession, SessionEvent

from .conftest import session_of

pytestmark = pytest.mark.django_db(transaction=True)


def test_stop_closes_the_chat_in_livechat_and_the_session(bot, lc):
    body = bot.start()

    response = bot.post(f"sessions/{body['id']}/stop", {"reason": "resolved"})

    assert response.status_code == 200
    assert response.json()["id"] == body["id"]
    assert response.json()["status"] == "closed"
    assert lc.chat(body["livechat_chat_id"])["active"] is False
    session = session_of(body)
    assert (session.status, session.closed_by, session.close_reason) == ("closed", "bot", "resolved")
    closed = session.events.get(kind=SessionEvent.Kind.CLOSED)
    assert closed.actor == "bot" and closed.data == {"closed_by": "bot", "reason": "resolved"}
    # The documented Customer API method, on the chat we opened.
    request = lc.requests("deactivate_chat")[0]
    assert request["api"] == "customer" and request["json"] == {"id": body["livechat_chat_id"]}


def test_a_second_stop_is_200_without_a_second_livechat_call(bot, lc):
    body = bot.start()
    first = bot.post(f"sessions/{body['id']}/stop")
    second = bot.post(f"sessions/{body['id']}/stop")

    assert first.status_code == second.status_code == 200
    assert second.json()["status"] == "closed"
    assert len(lc.requests("deactivate_chat")) == 1
    assert session_of(body).events.filter(kind=SessionEvent.Kind.CLOSED).count() == 1


def test_stopping_a_chat_livechat_already_closed_closes_the_session(bot, lc):
    body = bot.start()
    lc.close(body["livechat_chat_id"], agent_id="smith@example.com")

    response = bot.post(f"sessions/{body['id']}/stop")

    assert response.status_code == 200 and response.json()["status"] == "closed"
    assert lc.requests("deactivate_chat")[0]["status"] != 200
    closed = session_of(body).events.get(kind=SessionEvent.Kind.CLOSED)
    assert closed.raw["livechat_error"] == "chat_inactive"


def test_livechat_down_on_stop_is_502_and_the_session_stays_open(bot, lc, short_budget):
    body = bot.start()
    lc.add_fault("deactivate_chat", count=100, error_type="service_unavailable")

    response = bot.post(f"sessions/{body['id']}/stop")

    assert response.status_code == 502
    assert response.json()["error"]["type"] == "livechat_error"
    assert session_of(body).status == "waiting"
    lc.state.faults.clear()
    assert bot.post(f"sessions/{body['id']}/stop").json()["status"] == "closed"


def test_stop_sends_what_is_still_queued_first(bot, lc, settings):
    body = bot.start()
    lc.add_fault("send_event", count=1, error_type="service_unavailable")
    bot.send(body["id"], "last words")  # failed once, due again at once (schedule [0, …])

    assert bot.post(f"sessions/{body['id']}/stop").status_code == 200

    chat = lc.chat(body["livechat_chat_id"])
    assert chat["threads"][-1]["events"][-1]["text"] == "last words"


def test_get_session_shows_its_state(bot, lc):
    body = bot.start("conv-7")
    session = session_of(body)
    HitlSession.objects.filter(pk=session.pk).update(status="assigned", agent_id="smith@example.com",
                                                     agent_name="John Smith")

    shown = bot.get(f"sessions/{body['id']}").json()

    assert shown["id"] == body["id"]
    assert shown["status"] == "assigned"
    assert shown["conversation_id"] == "conv-7"
    assert shown["livechat_chat_id"] == body["livechat_chat_id"]
    assert shown["agent"] == {"id": "smith@example.com", "name": "John Smith"}
    assert shown["closed_at"] is None and shown["close_reason"] == ""

    bot.post(f"sessions/{body['id']}/stop", {"reason": "done"})
    shown = bot.get(f"sessions/{body['id']}").json()
    assert shown["status"] == "closed" and shown["closed_at"] and shown["close_reason"] == "done"
