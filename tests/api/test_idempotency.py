"""Idempotency-Key: the first answer again for a retry; 409 for the key on another request."""
import pytest

from bridge.models import EndUser, HitlSession, IdempotencyRecord, Message
from bridge.services import idempotency

from .conftest import customer_texts

pytestmark = pytest.mark.django_db(transaction=True)

START = {"conversation_id": "conv-1", "user": {"external_id": "u-1", "name": "Ada"}, "title": "Help"}


def test_a_retried_start_gets_the_first_answer_and_opens_one_chat(bot, lc):
    first = bot.post("sessions", START, HTTP_IDEMPOTENCY_KEY="start-1")
    retry = bot.post("sessions", START, HTTP_IDEMPOTENCY_KEY="start-1")

    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert len(lc.chats()) == 1
    assert HitlSession.objects.count() == 1


def test_key_order_and_spacing_of_the_body_do_not_matter(bot, lc):
    first = bot.post("users", {"external_id": "u-1", "name": "Ada"}, HTTP_IDEMPOTENCY_KEY="k")
    retry = bot.client.post("/api/v1/users", data='{ "name": "Ada",  "external_id": "u-1" }',
                            content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")
    assert retry.status_code == 201 and retry.json() == first.json()


def test_the_same_key_with_another_body_is_409(bot, lc):
    bot.post("users", {"external_id": "u-1"}, HTTP_IDEMPOTENCY_KEY="k")
    response = bot.post("users", {"external_id": "u-2"}, HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 409
    assert response.json()["error"]["type"] == "conflict"
    assert "different request" in response.json()["error"]["message"]
    assert not EndUser.objects.filter(external_id="u-2").exists()


def test_the_same_key_on_another_endpoint_is_409(bot, lc):
    body = bot.start()
    bot.post(f"sessions/{body['id']}/messages", {"text": "a"}, HTTP_IDEMPOTENCY_KEY="k")
    response = bot.post(f"sessions/{body['id']}/stop", {"text": "a"}, HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 409


def test_a_retried_message_is_sent_once(bot, lc):
    body = bot.start()
    first = bot.send(body["id"], "hello", HTTP_IDEMPOTENCY_KEY="m")
    retry = bot.send(body["id"], "hello", HTTP_IDEMPOTENCY_KEY="m")
    assert first.status_code == retry.status_code == 202
    assert retry.json() == first.json()
    assert customer_texts(lc, body["livechat_chat_id"])[1:] == ["hello"]
    assert Message.objects.filter(text="hello").count() == 1


def test_client_errors_are_replayed_too(bot, lc):
    first = bot.post("users", {"name": "no id"}, HTTP_IDEMPOTENCY_KEY="bad")
    retry = bot.post("users", {"name": "no id"}, HTTP_IDEMPOTENCY_KEY="bad")
    assert first.status_code == retry.status_code == 400
    assert retry.json() == first.json()


def test_a_502_is_not_kept_so_a_retry_with_the_key_tries_again(bot, lc, short_budget):
    lc.add_fault("start_chat", count=100, error_type="service_unavailable")
    failed = bot.post("sessions", START, HTTP_IDEMPOTENCY_KEY="start-1")
    assert failed.status_code == 502
    assert not IdempotencyRecord.objects.filter(key="start-1").exists()

    lc.state.faults.clear()
    retry = bot.post("sessions", START, HTTP_IDEMPOTENCY_KEY="start-1")
    assert retry.status_code == 201
    assert "Idempotent-Replayed" not in retry


def test_a_key_still_in_progress_is_409_retry_later(bot, lc):
    fingerprint = idempotency.request_fingerprint(method="POST", path="/api/v1/users", body=b"{}")
    idempotency.begin(api_key=bot.bundle.integration.api_keys.get(), key="busy", fingerprint=fingerprint)
    response = bot.post("users", {}, HTTP_IDEMPOTENCY_KEY="busy")
    assert response.status_code == 409
    assert response.json()["error"]["details"]["in_progress"] is True


def test_an_overlong_key_is_400(bot, lc):
    response = bot.post("users", {"external_id": "u-1"}, HTTP_IDEMPOTENCY_KEY="k" * 256)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]["message"]
