"""API keys and integrations are cached per process for a few seconds: a change saved in the
process is seen at once, one made by another process (here: a queryset update, which sends no
signal) within the cache's lifetime, never later."""
import pytest
from django.utils import timezone

from bridge import process_cache
from bridge.models import ApiKey, Integration
from bridge.services import api_keys, integration_cache
from bridge.services.api_keys import create_api_key, revoke_api_key
from tests.conftest import make_integration
from tests.webhooks.helpers import WEBHOOK_SECRET, fixture, make_session, post_webhook

pytestmark = pytest.mark.django_db


class Clock:
    """Stands in for time.monotonic in the per-process cache: the test moves time forward."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(process_cache.time, "monotonic", clock)
    return clock


def integration_call(client, raw_key):
    return client.get("/api/v1/integration", HTTP_AUTHORIZATION=f"Bearer {raw_key}").status_code


def test_a_key_revoked_here_is_refused_at_once(client, clock):
    api_key, raw_key = create_api_key(integration=make_integration().integration)
    assert integration_call(client, raw_key) == 200
    revoke_api_key(api_key=api_key)
    assert integration_call(client, raw_key) == 401


def test_a_key_revoked_by_another_process_is_refused_within_the_cache_lifetime(client, clock):
    api_key, raw_key = create_api_key(integration=make_integration().integration)
    assert integration_call(client, raw_key) == 200
    ApiKey.objects.filter(pk=api_key.pk).update(revoked_at=timezone.now())  # no signal here
    clock.now += api_keys.KEY_CACHE_SECONDS - 0.5
    assert integration_call(client, raw_key) == 200  # still this process's copy
    clock.now += 1
    assert integration_call(client, raw_key) == 401


def test_disabling_an_integration_refuses_its_keys_and_webhooks_at_once(client, clock):
    integration = make_integration(webhook_secret=WEBHOOK_SECRET).integration
    make_session(integration)
    _, raw_key = create_api_key(integration=integration)
    assert integration_call(client, raw_key) == 200
    assert post_webhook(client, integration, fixture("incoming_event_message")).status_code == 200
    integration.enabled = False
    integration.save()
    assert integration_call(client, raw_key) == 401
    assert post_webhook(client, integration, fixture("chat_deactivated")).status_code == 404


def test_a_webhook_secret_changed_by_another_process_applies_within_the_cache_lifetime(client, clock):
    integration = make_integration(webhook_secret=WEBHOOK_SECRET).integration
    make_session(integration)
    assert post_webhook(client, integration, fixture("user_added_to_chat")).status_code == 200
    Integration.objects.filter(pk=integration.pk).update(webhook_secret="the-new-secret")  # no signal here
    envelope = fixture("incoming_event_message", secret="the-new-secret")
    assert post_webhook(client, integration, envelope).status_code == 401  # still this process's copy
    clock.now += integration_cache.CACHE_SECONDS + 0.5
    assert post_webhook(client, integration, fixture("incoming_event_message")).status_code == 401
    assert post_webhook(client, integration, envelope).status_code == 200
