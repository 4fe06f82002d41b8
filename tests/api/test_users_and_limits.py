"""POST /api/v1/users, bad input, authentication, body size and rate limits."""
import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from bridge.models import EndUser

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_user_is_created_then_found_and_updated(bot):
    created = bot.post("users", {"external_id": "u-1", "name": "Ada", "email": "ada@example.com"})
    assert created.status_code == 201
    assert created.json() == {"id": created.json()["id"], "external_id": "u-1", "name": "Ada",
                              "email": "ada@example.com"}

    again = bot.post("users", {"external_id": "u-1", "name": "Ada L."})
    assert again.status_code == 200
    assert again.json() == {**created.json(), "name": "Ada L."}
    assert EndUser.objects.filter(integration=bot.integration).count() == 1


def test_unknown_fields_are_ignored(bot):
    response = bot.post("users", {"external_id": "u-1", "favourite_colour": "green", "name": "Ada"})
    assert response.status_code == 201
    assert "favourite_colour" not in response.json()


@pytest.mark.parametrize(
    "payload, field",
    [({}, "external_id"), ({"external_id": "u", "email": "not-an-email"}, "email"),
     ({"external_id": "x" * 256}, "external_id"), ({"external_id": "u", "picture_url": "nope"}, "picture_url")],
)
def test_bad_users_are_400_saying_what_to_fix(bot, payload, field):
    response = bot.post("users", payload)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "validation_error"
    assert list(error["details"]["fields"]) == [field]
    assert error["message"].startswith(f"{field}: ")


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"user": {"external_id": "u"}}, "conversation_id"),
        ({"conversation_id": "c"}, "user"),
        ({"conversation_id": "c", "user_id": 1, "user": {"external_id": "u"}}, "user"),
        ({"conversation_id": "c", "user": {"external_id": "u"}, "transcript": [{"author": "agent", "text": "x"}]},
         "transcript.0.author"),
        ({"conversation_id": "c", "user": {"external_id": "u"}, "transcript": [{"author": "user"}]},
         "transcript.0.text"),
        ({"conversation_id": "c", "user": {"external_id": "u"}, "metadata": ["not", "a", "dict"]}, "metadata"),
        ({"conversation_id": "c", "user": {}}, "user.external_id"),
    ],
)
def test_bad_sessions_are_400_naming_the_field(bot, lc, payload, field):
    response = bot.post("sessions", payload)
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["details"]["fields"]
    assert lc.requests() == []


def test_a_user_id_that_does_not_exist_is_404(bot, lc):
    response = bot.post("sessions", {"conversation_id": "c", "user_id": 999999})
    assert response.status_code == 404
    assert "POST /api/v1/users" in response.json()["error"]["message"]


def test_malformed_json_is_400(bot):
    response = bot.client.post("/api/v1/users", data="{nope", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "validation_error"


@pytest.mark.parametrize("header", [None, "Bearer hitl_abc_wrong", "Basic abc"])
def test_without_a_valid_key_every_endpoint_is_401(db, header):
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    for path in ("users", "sessions", "sessions/7d4f5a8e-3c1b-4b55-9d6e-0f5a2c1e9b10/stop"):
        response = client.post(f"/api/v1/{path}", {}, format="json")
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "authentication_error"
    assert client.get("/api/v1/sessions/7d4f5a8e-3c1b-4b55-9d6e-0f5a2c1e9b10").status_code == 401


def test_a_body_over_1_mib_is_413(bot):
    big = '{"external_id": "u", "name": "' + "x" * (1024 * 1024) + '"}'
    response = bot.client.post("/api/v1/users", data=big, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "validation_error"
    assert "limit" in response.json()["error"]["message"]


def test_too_many_requests_per_key_is_429_with_retry_after(bot, outsider, settings):
    settings.API_RATE_LIMIT = "3/min"
    cache.clear()
    answers = [bot.post("users", {"external_id": f"u-{i}"}).status_code for i in range(4)]
    assert answers == [201, 201, 201, 429]
    response = bot.get("integration")
    assert response.status_code == 429
    assert response.json()["error"]["type"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60
    # Another key has its own budget.
    assert outsider.get("integration").status_code == 200
