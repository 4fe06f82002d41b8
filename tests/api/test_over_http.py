"""The whole bot round trip over real HTTP: a bot → the console (live server) → the LiveChat sandbox."""
import pytest
import requests

from .conftest import customer_texts

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_bot_hands_over_talks_and_takes_back_over_http(bot, lc, live_server):
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {bot.bundle.api_key}"
    base = f"{live_server.url}/api/v1"

    user = api.post(f"{base}/users", json={"external_id": "u-1", "name": "Ada"}, timeout=10)
    assert user.status_code == 201
    started = api.post(f"{base}/sessions", json={
        "conversation_id": "conv-http", "user_id": user.json()["id"], "title": "Over HTTP",
        "transcript": [{"author": "user", "text": "hello bot"}, {"author": "bot", "text": "hello human"}],
    }, headers={"Idempotency-Key": "start-http"}, timeout=15)
    assert started.status_code == 201, started.text
    session = started.json()

    sent = api.post(f"{base}/sessions/{session['id']}/messages", json={"text": "over the wire", "external_id": "w1"},
                    timeout=10)
    assert sent.status_code == 202
    lc.agent_message(session["livechat_chat_id"], "smith@example.com", "agent here")
    stopped = api.post(f"{base}/sessions/{session['id']}/stop", json={"reason": "done"}, timeout=15)
    assert stopped.status_code == 200 and stopped.json()["status"] == "closed"

    assert customer_texts(lc, session["livechat_chat_id"]) == [
        "Over HTTP", "Conversation with the bot so far:\nUser: hello bot\nBot: hello human", "over the wire",
    ]
    assert lc.chat(session["livechat_chat_id"])["active"] is False
    shown = api.get(f"{base}/sessions/{session['id']}", timeout=10).json()
    assert shown["status"] == "closed" and shown["closed_by"] == "bot"
    assert requests.get(f"{base}/sessions/{session['id']}", timeout=10).status_code == 401
