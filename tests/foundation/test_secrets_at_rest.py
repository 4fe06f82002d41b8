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
