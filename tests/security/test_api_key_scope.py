"""Gaps of the API's tenant matrix (tests/api/test_outsiders.py has another tenant's key): an API
key speaks for one *integration*, not its tenant; a revoked key and the key of a disabled
integration open nothing."""
import json
import re
import uuid

import pytest

from bridge.models import EndUser, HitlSession, Message
from bridge.services.api_keys import create_api_key, revoke_api_key
from tests.api.conftest import Bot
from tests.conftest import IntegrationWithKey, make_integration

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(db, livechat_settings, sandbox, sandbox_org, settings):
    settings.LIVECHAT_RETRY_SCHEDULE = [0]
    bot = Bot(make_integration(
        "acme", "main", client_id=sandbox_org.client_id, organization_id=sandbox_org.organization_id,
        agent_token=sandbox_org.agent_token, group_id=5,
    ))
    session = bot.start("conv-1")
    return bot, session


def calls(session_id, user_id):
    return [
        ("get", "integration", None),
        ("post", "users", {"external_id": "u-new"}),
        ("post", "sessions", {"conversation_id": "conv-x", "user_id": user_id}),
        ("get", f"sessions/{session_id}", None),
        ("get", f"sessions/{session_id}/messages", None),
        ("post", f"sessions/{session_id}/messages", {"type": "text", "text": "hijack"}),
        ("post", f"sessions/{session_id}/stop", {}),
    ]


def normalized(body, *ids):
    """The answer with the ids the caller gave replaced by a placeholder."""
    text = json.dumps(body, sort_keys=True)
    for value in ids:
        text = re.sub(rf"(?<![\w-]){re.escape(value)}(?![\w-])", "<id>", text)
    return text


def call(bot, method, path, body):
    return bot.get(path) if method == "get" else bot.post(path, body)


def unchanged(session):
    row = HitlSession.objects.get(pk=session["id"])
    return row.status == "waiting" and not Message.objects.filter(text="hijack").exists()


def test_the_same_tenants_other_integration_sees_none_of_its_sessions(owner):
    bot, session = owner
    sibling = Bot(make_integration("acme", "second"))
    user_id = EndUser.objects.get(integration=bot.integration).pk
    unknown = str(uuid.uuid4())
    for (method, path, body), (_, unknown_path, unknown_body) in zip(calls(session["id"], user_id)[2:],
                                                                     calls(unknown, 10**9)[2:]):
        response = call(sibling, method, path, body)
        assert response.status_code == 404, (path, response.json())
        assert response.json()["error"]["type"] == "not_found"
        # No oracle: exactly the answer to an id that does not exist at all.
        missing = call(sibling, method, unknown_path, unknown_body)
        assert normalized(response.json(), session["id"], str(user_id)) == normalized(missing.json(), unknown,
                                                                                      str(10**9))
    assert unchanged(session)


@pytest.mark.parametrize("how", ["revoked key", "disabled integration", "revoked, other key still good"])
def test_a_revoked_key_or_a_disabled_integration_opens_nothing(owner, how):
    bot, session = owner
    user_id = EndUser.objects.get(integration=bot.integration).pk
    spare = None
    if how == "disabled integration":
        bot.integration.enabled = False
        bot.integration.save()
    else:
        api_key = bot.integration.api_keys.get()
        if how == "revoked, other key still good":
            _, spare = create_api_key(integration=bot.integration, name="spare")
        revoke_api_key(api_key=api_key)
    for method, path, body in calls(session["id"], user_id):
        response = call(bot, method, path, body)
        assert response.status_code == 401, (how, path, response.json())
        assert response.json()["error"]["type"] == "authentication_error"
    assert unchanged(session)
    if spare:
        assert Bot(IntegrationWithKey(bot.integration, spare)).get(f"sessions/{session['id']}").status_code == 200
