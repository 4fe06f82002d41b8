import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from bridge.models import EndUser, Integration
from tests.conftest import make_integration

pytestmark = pytest.mark.django_db

SECRETS = ("whs-acme-s3cr3t", "YWNjb3VudDpwYXQ=")


def raw_rows(table):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table}")
        return [" ".join(str(value) for value in row) for row in cursor.fetchall()]


def test_database_rows_hold_no_secret_in_plain_text():
    made = make_integration()
    EndUser.objects.create(
        integration=made.integration,
        external_id="u1",
        customer_token="dal:customer-token-value",
        customer_cookies='{"__lc_cid": "cid-value", "__lc_cst": "cst-value"}',
    )
    dump = "\n".join(raw_rows("bridge_integration") + raw_rows("bridge_enduser") + raw_rows("bridge_apikey"))
    callback_secret = Integration.objects.get().callback_secret
    for secret in (*SECRETS, callback_secret, "dal:customer-token-value", "cid-value", "cst-value", made.api_key):
        assert secret not in dump
    # ...and the application still reads them back.
    integration = Integration.objects.get()
    assert (integration.webhook_secret, integration.agent_token) == SECRETS


def test_rotation_keeps_every_secret_readable_under_the_new_key_alone(settings):
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    made = make_integration()
    EndUser.objects.create(integration=made.integration, external_id="u1", customer_token="dal:tok")
    callback_secret = Integration.objects.get().callback_secret

    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_encryption_keys", stdout=open("/dev/null", "w"))

    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    integration = Integration.objects.get()
    assert (integration.webhook_secret, integration.agent_token) == SECRETS
    assert integration.callback_secret == callback_secret
    assert EndUser.objects.get().customer_token == "dal:tok"


def test_a_secret_under_an_unknown_key_fails_without_echoing_the_ciphertext(settings):
    make_integration()
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(ValueError) as failure:
        Integration.objects.get()
    assert "gAAAA" not in str(failure.value)


def all_rows():
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
    return "\n".join(row for table in tables for row in raw_rows(table))


def test_a_real_start_through_the_sandbox_stores_the_customer_token_and_cookies_encrypted(
    client, livechat_settings, sandbox, sandbox_org
):
    """POST /api/v1/sessions mints a LiveChat customer (token + __lc_cid/__lc_cst cookies); no
    table of the database holds any secret in plain text afterwards, and all read back."""
    import base64
    import json

    from bridge.services.customers import identity_of

    made = make_integration(
        client_id=sandbox_org.client_id, organization_id=sandbox_org.organization_id,
        agent_token=sandbox_org.agent_token, group_id=5, callback_url="https://bot.example.com/hitl",
    )
    response = client.post(
        "/api/v1/sessions",
        {"conversation_id": "conv-at-rest", "user": {"external_id": "u-rest", "name": "Ada"}, "title": "Help"},
        content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {made.api_key}",
        HTTP_IDEMPOTENCY_KEY="at-rest-1",
    )
    assert response.status_code == 201, response.content

    end_user = EndUser.objects.get(external_id="u-rest")
    identity = identity_of(end_user=end_user)
    customer = sandbox.state.customers[identity.customer_id]
    # What the console keeps is what LiveChat (the sandbox) minted.
    assert identity.access_token in sandbox.state.tokens
    assert identity.cookies == {"__lc_cid": customer.cid, "__lc_cst": customer.cst}
    assert json.loads(end_user.customer_cookies) == identity.cookies

    integration = Integration.objects.get()
    secrets = {
        "customer token": identity.access_token,
        "__lc_cid": customer.cid,
        "__lc_cst": customer.cst,
        "webhook secret": integration.webhook_secret,
        "agent token": integration.agent_token,
        "personal access token": base64.b64decode(integration.agent_token).decode().partition(":")[2],
        "callback secret": integration.callback_secret,
        "API key": made.api_key,
    }
    dump = all_rows()
    assert identity.customer_id in dump  # the customer id is not a secret: the dump is real
    assert [name for name, value in secrets.items() if value in dump] == []
    assert "dal:" not in dump and "whsec_" not in dump
