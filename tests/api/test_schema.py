"""OpenAPI 3 at /api/v1/schema/ and self-contained docs at /api/v1/docs/."""
import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db

CONTRACT_PATHS = {
    "/api/v1/users": {"post"},
    "/api/v1/sessions": {"post"},
    "/api/v1/sessions/{session_id}": {"get"},
    "/api/v1/sessions/{session_id}/messages": {"get", "post"},
    "/api/v1/sessions/{session_id}/stop": {"post"},
}


def test_the_schema_lists_the_contract_with_examples_and_the_api_key(client):
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    for path, methods in CONTRACT_PATHS.items():
        assert methods <= set(schema["paths"][path]), path
    start = schema["paths"]["/api/v1/sessions"]["post"]
    assert start["requestBody"]["content"]["application/json"]["examples"]
    assert {"201", "409", "502"} <= set(start["responses"])
    assert start["responses"]["409"]["content"]["application/json"]["examples"]
    assert any(p["name"] == "Idempotency-Key" for p in start["parameters"])
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http", "scheme": "bearer", "description": "The integration's API key: `Authorization: Bearer hitl_…`"
    }


def test_the_schema_generates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


def test_the_docs_page_needs_no_cdn(client):
    page = client.get("/api/v1/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "cdn." not in html and "jsdelivr" not in html and "unpkg" not in html
    assert "/api/v1/docs/assets/swagger-ui-bundle.js" in html
    asset = client.get("/api/v1/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200 and asset["Content-Type"] == "text/javascript"
    assert client.get("/api/v1/docs/assets/..%2Fsettings.py").status_code == 404
