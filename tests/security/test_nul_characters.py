"""NUL characters, which PostgreSQL's text and jsonb refuse, never turn a request into a 500.

They matter on PostgreSQL (`make test-services`); on SQLite these tests pin the same behaviour.
"""
import json

import pytest

from bridge.models import Message, SessionEvent
from tests.conftest import make_integration
from tests.webhooks.helpers import WEBHOOK_SECRET, fixture, make_session, post_webhook, with_event

pytestmark = pytest.mark.django_db


def test_api_input_is_stored_without_nul_characters(client, integration):
    body = {"external_id": "u\x001", "name": "Ann\x00", "email": ""}
    response = client.post("/api/v1/users", json.dumps(body), content_type="application/json", **integration.auth)
    assert response.status_code == 201
    assert (response.json()["external_id"], response.json()["name"]) == ("u1", "Ann")


def test_webhook_payloads_are_stored_without_nul_characters(client):
    integration = make_integration(webhook_secret=WEBHOOK_SECRET).integration
    session = make_session(integration)
    envelope = with_event(fixture("incoming_event_message"), text="hel\x00lo", properties={"k\x00": "v\x00"})
    response = post_webhook(client, integration, envelope)
    assert response.status_code == 200
    assert Message.objects.get(session=session).text == "hello"

    access = fixture("chat_access_updated")
    access["payload"]["\x00junk"] = "\x00"
    assert post_webhook(client, integration, access).status_code == 200
    assert "\x00" not in json.dumps(list(SessionEvent.objects.values_list("raw", flat=True)))


@pytest.mark.parametrize("header", ["Bearer hitl_\x00ab_x", "Bearer hitl_0123456789a\x00_x"])
def test_an_api_key_with_a_nul_character_is_401(client, integration, header):
    response = client.get("/api/v1/integration", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert client.get("/api/v1/integration", **integration.auth).status_code == 200


def test_an_idempotency_key_with_a_nul_character_is_400(client, integration):
    body = json.dumps({"external_id": "u1", "name": "Ann"})
    response = client.post(
        "/api/v1/users", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k\x00", **integration.auth
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "validation_error"


def test_a_secret_with_a_nul_character_added_is_still_wrong(client):
    integration = make_integration(webhook_secret=WEBHOOK_SECRET).integration
    make_session(integration)
    envelope = fixture("incoming_event_message", secret=WEBHOOK_SECRET + "\x00")
    assert post_webhook(client, integration, envelope).status_code == 401
    assert not Message.objects.exists()
