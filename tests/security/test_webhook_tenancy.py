"""Tenant isolation of the LiveChat webhook: a webhook URL belongs to one integration, and only that
integration's secret opens it. Another integration's secret (of another tenant or of the same
one) is 401 and stores nothing; an unknown, malformed or disabled integration is a JSON 404; a
valid webhook of one integration never touches another's chat."""
import json
import uuid

import pytest

from bridge.models import Delivery, HitlSession, Message, SessionEvent, WebhookReceipt
from tests.conftest import make_integration
from tests.webhooks.helpers import CHAT_ID, THREAD_ID, fixture, make_session, post_webhook, webhook_outcome

pytestmark = pytest.mark.django_db

SECRETS = {"acme": "whs-acme-tenancy-01", "acme-second": "whs-acme-second-02", "globex": "whs-globex-tenancy-03"}
ACTIONS = ["incoming_event_message", "user_added_to_chat", "chat_transferred", "chat_deactivated", "incoming_chat",
           "incoming_event_file"]


@pytest.fixture
def world(db):
    """acme/main with a session on the fixtures' chat, acme/second, and globex/main with a session
    on the same chat and thread ids (ids are per LiveChat organization, so they can collide)."""
    integrations = {
        "acme": make_integration("acme", "main", webhook_secret=SECRETS["acme"],
                                 callback_url="https://bot.acme.test/h"),
        "acme-second": make_integration("acme", "second", webhook_secret=SECRETS["acme-second"],
                                        callback_url="https://bot.acme.test/h2"),
        "globex": make_integration("globex", "main", webhook_secret=SECRETS["globex"],
                                   callback_url="https://bot.globex.test/h"),
    }
    sessions = {name: make_session(integrations[name].integration, chat_id=CHAT_ID, thread_id=THREAD_ID)
                for name in ("acme", "globex")}
    return {name: bundle.integration for name, bundle in integrations.items()}, sessions


def traces():
    return (WebhookReceipt.objects.count(), Message.objects.count(), SessionEvent.objects.count(),
            Delivery.objects.count(),
            tuple(HitlSession.objects.order_by("pk").values_list("status", "agent_id", "closed_at")))


def assert_json_error(response, status, error_type):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["type"] == error_type and error["message"]
    for secret in SECRETS.values():
        assert secret not in response.content.decode()


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("url_of, secret_of", [
    ("acme", "globex"), ("acme", "acme-second"), ("acme-second", "acme"), ("globex", "acme"),
    ("acme-second", "globex"), ("globex", "acme-second"),
])
def test_another_integrations_secret_is_401_and_stores_nothing(client, world, url_of, secret_of, action):
    integrations, _ = world
    before = traces()
    response = post_webhook(client, integrations[url_of], fixture(action, secret=SECRETS[secret_of]))
    assert_json_error(response, 401, "authentication_error")
    assert traces() == before


@pytest.mark.parametrize("action", ACTIONS)
def test_each_integrations_own_secret_reaches_only_its_own_session(client, world, action):
    integrations, sessions = world
    response = post_webhook(client, integrations["globex"], fixture(action, secret=SECRETS["globex"]))
    assert response.status_code == 200, response.content
    acme = sessions["acme"]
    assert not SessionEvent.objects.filter(session=acme).exists()
    assert not Message.objects.filter(session=acme).exists()
    assert not Delivery.objects.filter(session=acme).exists()
    assert not Delivery.objects.exclude(integration=integrations["globex"]).exists()
    acme_now = HitlSession.objects.get(pk=acme.pk)
    assert (acme_now.status, acme_now.agent_id, acme_now.closed_at) == (acme.status, acme.agent_id, acme.closed_at)


def test_a_session_of_the_same_tenant_but_another_integration_is_not_found_by_chat(client, world):
    """acme/second has no session: acme/main's chat id through acme/second's URL is ignored (its
    receipt is kept, nothing else)."""
    integrations, sessions = world
    before = traces()
    outcome = webhook_outcome(client, integrations["acme-second"],
                              fixture("incoming_event_message", secret=SECRETS["acme-second"]))
    assert outcome == "ignored"
    assert traces()[1:] == before[1:]


@pytest.mark.parametrize("path", [
    f"/webhooks/livechat/{uuid.uuid4()}/",
    "/webhooks/livechat/not-a-uuid/",
    "/webhooks/livechat/%00/",
    "/webhooks/livechat/../../admin/",
    "/webhooks/livechat/",
    "/webhooks/other/" + str(uuid.uuid4()) + "/",
])
def test_an_unknown_webhook_url_is_a_json_404_and_stores_nothing(client, world, path):
    before = traces()
    for secret in SECRETS.values():
        response = client.post(path, data=json.dumps(fixture("incoming_event_message", secret=secret)),
                               content_type="application/json")
        assert_json_error(response, 404, "not_found")
    assert traces() == before


def test_a_disabled_integration_is_a_json_404_even_with_its_secret(client, world):
    integrations, _ = world
    integrations["acme"].enabled = False
    integrations["acme"].save()
    before = traces()
    response = post_webhook(client, integrations["acme"], fixture("incoming_event_message", secret=SECRETS["acme"]))
    assert_json_error(response, 404, "not_found")
    assert traces() == before


def test_the_404_does_not_tell_a_disabled_integration_from_a_missing_one(client, world):
    integrations, _ = world
    integrations["acme"].enabled = False
    integrations["acme"].save()
    disabled = post_webhook(client, integrations["acme"], fixture("incoming_event_message", secret="x" * 12))
    missing = client.post(f"/webhooks/livechat/{uuid.uuid4()}/", data=json.dumps(fixture("incoming_event_message")),
                          content_type="application/json")
    assert disabled.status_code == missing.status_code == 404
    assert disabled.json() == missing.json()
