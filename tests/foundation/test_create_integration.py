import io
import json

import pytest
from django.core.management import CommandError, call_command

from bridge.models import ApiKey, Integration, Tenant
from bridge.services.api_keys import revoke_api_key

pytestmark = pytest.mark.django_db

ARGS = [
    "--tenant", "acme", "--name", "support", "--client-id", "cid", "--organization-id", "org-1",
    "--group-id", "5", "--webhook-secret", "hook-secret", "--agent-token", "YTpi",
    "--callback-url", "https://bot.example.com/hitl",
]


def create(*extra):
    out = io.StringIO()
    call_command("create_integration", *ARGS, *extra, stdout=out)
    return out.getvalue()


def test_json_output_has_the_four_keys_and_creates_the_tenant(settings):
    settings.PUBLIC_BASE_URL = "https://hitl.example.com"
    result = json.loads(create("--json"))
    assert set(result) == {"integration_id", "webhook_url", "api_key", "callback_secret"}
    integration = Integration.objects.get(id=result["integration_id"])
    assert integration.tenant == Tenant.objects.get(slug="acme")
    assert result["webhook_url"] == f"https://hitl.example.com/webhooks/livechat/{integration.id}/"
    assert result["api_key"].startswith("hitl_")
    assert result["callback_secret"].startswith("whsec_")
    assert integration.group_id == 5 and integration.callback_url == "https://bot.example.com/hitl"


def test_printed_api_key_authenticates_and_a_revoked_one_does_not(client):
    result = json.loads(create("--json"))
    auth = {"HTTP_AUTHORIZATION": f"Bearer {result['api_key']}"}
    response = client.get("/api/v1/integration", **auth)
    assert response.status_code == 200
    assert response.json()["id"] == result["integration_id"]

    revoke_api_key(api_key=ApiKey.objects.get())
    response = client.get("/api/v1/integration", **auth)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


@pytest.mark.parametrize(
    "header",
    ["Bearer hitl_000000000000_wrong", "Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer "],
)
def test_wrong_keys_get_the_contract_error(client, header):
    create("--json")
    response = client.get("/api/v1/integration", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert set(response.json()["error"]) >= {"type", "message"}
    assert response.json()["error"]["type"] == "authentication_error"


def test_no_key_is_401(client):
    response = client.get("/api/v1/integration")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_a_second_integration_with_the_same_name_is_refused():
    create("--json")
    with pytest.raises(CommandError, match="already has an integration"):
        create("--json")


def test_the_key_is_stored_hashed():
    result = json.loads(create("--json"))
    stored = ApiKey.objects.get()
    assert result["api_key"] != stored.key_hash
    assert result["api_key"].startswith(stored.prefix + "_")


def test_every_generated_key_authenticates(integration):
    from bridge.services.api_keys import authenticate_api_key, create_api_key

    for _ in range(50):
        api_key, raw = create_api_key(integration=integration.integration)
        assert authenticate_api_key(raw) == api_key
        assert authenticate_api_key(raw + "x") is None
