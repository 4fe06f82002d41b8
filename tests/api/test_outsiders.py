"""Another tenant's API key sees nothing of this integration: every endpoint answers 404."""
import uuid

import pytest

from bridge.models import EndUser, Message

from .conftest import session_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def victim(bot, lc):
    """A session of `bot` with one message."""
    body = bot.start("conv-1")
    message = bot.send(body["id"], "private").json()
    user = EndUser.objects.get(integration=bot.integration)
    return {"session": body, "message": message, "user": user}


def endpoint_calls(victim):
    session_id = victim["session"]["id"]
    return {
        "GET session": ("get", f"sessions/{session_id}", None),
        "GET messages": ("get", f"sessions/{session_id}/messages", None),
        "POST message": ("post", f"sessions/{session_id}/messages", {"type": "text", "text": "hijack"}),
        "POST stop": ("post", f"sessions/{session_id}/stop", {}),
        "POST session with their user": (
            "post", "sessions", {"conversation_id": "mine", "user_id": victim["user"].pk}
        ),
    }


@pytest.mark.parametrize(
    "name", ["GET session", "GET messages", "POST message", "POST stop", "POST session with their user"]
)
def test_every_endpoint_is_404_for_another_tenants_key(victim, outsider, lc, name):
    method, path, body = endpoint_calls(victim)[name]
    calls_before = len(lc.requests())

    response = outsider.get(path) if method == "get" else outsider.post(path, body)

    assert response.status_code == 404, response.json()
    assert response.json()["error"]["type"] == "not_found"
    assert victim["session"]["id"] not in str(response.json()["error"].get("details", ""))
    # Nothing changed, nothing reached LiveChat.
    assert len(lc.requests()) == calls_before
    assert session_of(victim["session"]).status == "waiting"
    assert Message.objects.filter(text="hijack").count() == 0


@pytest.mark.parametrize(
    "method, path",
    [("get", "sessions/{id}"), ("get", "sessions/{id}/messages"), ("post", "sessions/{id}/messages"),
     ("post", "sessions/{id}/stop")],
)
def test_an_unknown_session_is_the_same_404(bot, lc, method, path):
    path = path.format(id=uuid.uuid4())
    response = bot.get(path) if method == "get" else bot.post(path, {"type": "text", "text": "x"})
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"


def test_another_tenant_with_the_same_external_id_gets_its_own_user(victim, outsider):
    theirs = outsider.post("users", {"external_id": victim["user"].external_id, "name": "Mallory"})
    assert theirs.status_code == 201
    assert theirs.json()["id"] != victim["user"].pk
    victim["user"].refresh_from_db()
    assert victim["user"].name == "Ada Lovelace"


def test_idempotency_keys_are_per_api_key(victim, bot, outsider):
    mine = bot.post("users", {"external_id": "k-1", "name": "Mine"}, HTTP_IDEMPOTENCY_KEY="same-key")
    theirs = outsider.post("users", {"external_id": "k-1", "name": "Mine"}, HTTP_IDEMPOTENCY_KEY="same-key")
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert "Idempotent-Replayed" not in theirs
