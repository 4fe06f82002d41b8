import json

import pytest

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_and_embedded_broker(client, settings):
    settings.CELERY_BROKER_URL = None
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "embedded"}


def test_healthz_is_503_when_the_broker_is_down(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"] == "down"


@pytest.mark.services
def test_healthz_sees_a_live_broker(client, settings):
    import os

    settings.CELERY_BROKER_URL = os.environ["CELERY_BROKER_URL"]
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["broker"] == "ok"


def test_body_over_one_mebibyte_is_413(client, integration):
    body = json.dumps({"junk": "x" * (1024 * 1024 + 10)})
    response = client.post("/api/v1/users", body, content_type="application/json", **integration.auth)
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "validation_error"


def test_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"


def test_openapi_schema_is_served(client):
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert b"openapi" in response.content
