"""Test connection and Register webhooks against the LiveChat sandbox, and the console's
session actions (stop, redeliver) going through the real services."""
import pytest
from django.urls import reverse

from bridge.livechat import LiveChatError

from bridge.models import Delivery, HitlSession
from bridge.services import livechat_setup
from dashboard.models import ConsoleAuditEntry

from . import factories

ALL_ACTIONS = {"incoming_event", "chat_deactivated", "chat_transferred", "user_added_to_chat"}


@pytest.fixture
def live(db, sandbox, sandbox_org, livechat_settings):
    tenant = factories.tenant("acme", "Acme")
    integration, secrets = factories.integration(
        tenant, client_id=sandbox_org.client_id, organization_id=sandbox_org.organization_id,
        agent_token=sandbox_org.agent_token, group_id=5)
    return integration


def test_connection_passes(live):
    report = livechat_setup.check_connection(integration=live)
    assert report.ok, report.summary
    assert [s.name for s in report.steps] == ["Customer token", "Group"]
    assert "group 5" in report.steps[1].detail


def test_connection_explains_a_wrong_agent_token(live):
    live.agent_token = "d3Jvbmc6dG9rZW4="  # wrong:token
    report = livechat_setup.check_connection(integration=live)
    assert not report.ok
    group = report.steps[1]
    assert not group.ok and "refused the agent token" in group.detail and "LiveChat said" in group.detail
    assert live.agent_token not in report.summary


def test_connection_explains_a_wrong_organization(live):
    live.organization_id = "nope"
    report = livechat_setup.check_connection(integration=live)
    token = report.steps[0]
    assert not token.ok and "customer token" in token.detail


def test_connection_explains_a_missing_group(live):
    live.group_id = 99
    report = livechat_setup.check_connection(integration=live)
    assert report.steps[0].ok and not report.steps[1].ok
    assert "no such group" in report.steps[1].detail


def test_connection_when_livechat_is_down(live, settings):
    settings.LIVECHAT_API_URL = settings.LIVECHAT_ACCOUNTS_URL = "http://127.0.0.1:9"
    report = livechat_setup.check_connection(integration=live)
    assert not report.ok and "could not reach LiveChat" in report.steps[0].detail


def test_register_webhooks_is_idempotent(live, sandbox):
    first = livechat_setup.register_webhooks(integration=live)
    assert set(first.created) == ALL_ACTIONS and first.existing == []
    live.refresh_from_db()
    assert set(live.registered_webhooks) == ALL_ACTIONS

    second = livechat_setup.register_webhooks(integration=live)
    assert second.created == [] and set(second.existing) == ALL_ACTIONS
    assert second.registered == first.registered

    hooks = [h for h in sandbox.state.webhooks.values() if h.url == live.webhook_url]
    assert len(hooks) == 4
    by_action = {h.action: h for h in hooks}
    assert by_action["incoming_event"].filters == {"author_type": "agent"}
    assert all(h.secret_key == live.webhook_secret for h in hooks)
    assert sandbox.state.organizations[live.organization_id].license_webhooks_enabled == {live.client_id}


def test_register_webhooks_replaces_one_with_a_stale_secret(live, sandbox):
    first = livechat_setup.register_webhooks(integration=live)
    live.webhook_secret = "a-new-secret-after-rotation"
    live.save()
    result = livechat_setup.register_webhooks(integration=live)
    assert set(result.created) == ALL_ACTIONS
    assert set(result.registered.values()).isdisjoint(first.registered.values())
    hooks = [h for h in sandbox.state.webhooks.values() if h.url == live.webhook_url]
    assert {h.secret_key for h in hooks} == {"a-new-secret-after-rotation"}


def test_register_webhooks_generates_a_missing_secret(live):
    live.webhook_secret = ""
    live.save()
    result = livechat_setup.register_webhooks(integration=live)
    live.refresh_from_db()
    assert result.secret_generated and len(live.webhook_secret) >= 32


def test_a_failed_registration_keeps_what_was_registered(live, sandbox):
    sandbox.add_fault("register_webhook", count=1, error_type="validation", status=400)
    # The first registration fails: nothing stored; the next run registers all four.
    with pytest.raises(LiveChatError):
        livechat_setup.register_webhooks(integration=live)
    live.refresh_from_db()
    assert live.registered_webhooks == {}
    assert set(livechat_setup.register_webhooks(integration=live).created) == ALL_ACTIONS


# ---- through the console


@pytest.fixture
def alice(live, client):
    user = factories.staff_user("alice")
    factories.member(user, live.tenant, "manager")
    client.force_login(user)
    return client


def test_console_register_button(live, alice):
    response = alice.post(reverse("admin:bridge_integration_register_webhooks", args=[live.pk]), follow=True)
    page = response.content.decode()
    assert "Registered 4 webhook(s)" in page
    live.refresh_from_db()
    for hook_id in live.registered_webhooks.values():
        assert hook_id in page
    entry = ConsoleAuditEntry.objects.get(action="integration.webhooks_registered")
    assert entry.changed_fields == ["registered_webhooks"]
    again = alice.post(reverse("admin:bridge_integration_register_webhooks", args=[live.pk]), follow=True)
    assert "already registered" in again.content.decode()


def test_console_register_failure_is_plain_words(live, alice, sandbox):
    sandbox.add_fault("list_webhooks", count=1, error_type="authorization", status=403)
    page = alice.post(reverse("admin:bridge_integration_register_webhooks", args=[live.pk]), follow=True)
    assert "Registering webhooks failed: LiveChat refused the agent token" in page.content.decode()


def test_console_test_connection_button(live, alice):
    page = alice.post(reverse("admin:bridge_integration_test_connection", args=[live.pk]), follow=True)
    assert "Connection OK" in page.content.decode()
    assert ConsoleAuditEntry.objects.get(action="integration.connection_tested").detail.startswith("passed")


def test_console_stop_goes_through_the_sessions_service(live, alice, sandbox):
    session = factories.session(live, status="assigned", chat_id="UNKNOWNCHAT")
    response = alice.post(reverse("admin:bridge_hitlsession_stop", args=[session.pk]), follow=True)
    assert "Handoff stopped" in response.content.decode()
    session.refresh_from_db()
    assert session.status == HitlSession.Status.CLOSED
    assert "alice" in session.close_reason or "alice" in session.closed_by
    assert ConsoleAuditEntry.objects.filter(action="session.stopped").count() == 1
    # Stopping again is harmless.
    again = alice.post(reverse("admin:bridge_hitlsession_stop", args=[session.pk]), follow=True)
    assert "already over" in again.content.decode()


def test_console_redelivers_to_the_bot(live, alice, webhook_receiver, django_capture_on_commit_callbacks):
    live.callback_url = webhook_receiver.url
    live.save()
    session = factories.session(live)
    dead = factories.delivery(session, state=Delivery.State.DEAD)
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post(reverse("admin:bridge_delivery_redeliver", args=[dead.pk]), follow=True)
    dead.refresh_from_db()
    assert dead.state == Delivery.State.DELIVERED
    assert webhook_receiver.received[-1]["id"] == dead.event_id
    assert "redelivered" in response.content.decode()
    assert session.events.filter(kind="manual", actor="staff:alice").exists()
