"""The console as a support lead uses it, in Chromium: configure an integration against the
LiveChat sandbox, audit a handoff, redeliver a failed callback, export CSV."""
import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import User

expect = pytest.importorskip("playwright.sync_api", reason="pip install -r requirements-dev.txt").expect

from bridge.models import ApiKey, Delivery, Integration, Message  # noqa: E402
from tests.dashboard import factories  # noqa: E402

from .conftest import log_in  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def acme(transactional_db):
    tenant = factories.tenant("acme", "Acme Support")
    alice = factories.staff_user("alice")
    bob = factories.staff_user("bob")
    factories.member(alice, tenant, "manager")
    factories.member(bob, tenant, "viewer")
    return tenant


def test_manager_adds_an_integration_tests_it_and_registers_webhooks(page, shot, acme, sandbox, sandbox_org,
                                                                     livechat_settings):
    log_in(page, "alice", factories.PASSWORD)
    expect(page.locator("h1")).to_have_text("Overview")
    shot(page, "overview-empty")

    page.goto("/admin/bridge/integration/add/")
    page.select_option("#id_tenant", label="Acme Support")
    page.fill("#id_name", "Main site")
    page.fill("#id_client_id", sandbox_org.client_id)
    page.fill("#id_organization_id", sandbox_org.organization_id)
    page.fill("#id_group_id", "5")
    page.fill("#id_new_agent_token", sandbox_org.agent_token)
    page.fill("#id_callback_url", "https://bot.example.com/hooks/livechat")
    shot(page, "integration-add")
    page.click("input[name=_save]")

    # The one-time page: the raw API key is shown once and works as a key.
    expect(page.locator("h1")).to_contain_text("created")
    raw_key = page.input_value("#secret-1")
    assert raw_key.startswith("hitl_")
    integration = Integration.objects.get(name="Main site")
    assert raw_key.startswith(ApiKey.objects.get(integration=integration).prefix + "_")
    shot(page, "integration-created-secrets-once")

    page.click("text=Continue to the integration")
    expect(page.locator("#webhook-url")).to_have_value(integration.webhook_url)
    assert raw_key not in page.content()  # never again
    page.click("#test-connection")
    expect(page.locator(".messagelist")).to_contain_text("Connection OK")
    expect(page.locator(".messagelist")).to_contain_text("group 5")
    shot(page, "integration-connection-ok")

    page.click("#register-webhooks")
    expect(page.locator(".messagelist")).to_contain_text("Registered 4 webhook(s)")
    integration.refresh_from_db()
    assert set(integration.registered_webhooks) == {
        "incoming_event", "chat_deactivated", "chat_transferred", "user_added_to_chat"}
    for hook_id in integration.registered_webhooks.values():
        expect(page.locator("#webhooks-heading + table")).to_contain_text(hook_id)
    shot(page, "integration-webhooks-registered")

    # A wrong group is explained in plain words.
    Integration.objects.filter(pk=integration.pk).update(group_id=77)
    page.click("#test-connection")
    expect(page.locator(".messagelist .error")).to_contain_text("no such group")
    shot(page, "integration-connection-error")


def test_support_lead_opens_a_transcript_redelivers_and_exports(page, shot, acme, webhook_receiver, image_url):
    integration, _ = factories.integration(acme, "Main site", callback_url=webhook_receiver.url)
    for minutes, status in [(3, "assigned"), (12, "waiting"), (95, "failed")]:
        factories.full_session(integration, status=status, first_reply_after=timedelta(minutes=minutes))
    factories.bulk_sessions(integration, 120, days=30)
    session = factories.full_session(integration, conversation_id="order-4711", status="closed",
                                     first_reply_after=timedelta(seconds=95), title="Refund for order 4711")
    Message.objects.filter(session=session, kind="image").update(url=image_url)
    dead = session.deliveries.get(state=Delivery.State.DEAD)
    globex = factories.tenant("globex", "Globex Retail")  # alice only reads this one
    factories.member(User.objects.get(username="alice"), globex, "viewer")
    globex_integration, _ = factories.integration(globex, "Shop")
    factories.bulk_sessions(globex_integration, 60, days=20)

    log_in(page, "alice", factories.PASSWORD)
    expect(page.locator(".tenant-card")).to_have_count(2)
    shot(page, "overview-two-tenants")
    page.click("nav.tenant-tabs >> text=Globex Retail")
    expect(page.locator(".tenant-card")).to_have_count(1)
    expect(page.locator(".tenant-card header")).to_contain_text("viewer")

    page.goto("/admin/bridge/hitlsession/")
    shot(page, "sessions-list")
    page.fill("#searchbar", "order-4711")
    page.press("#searchbar", "Enter")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    page.click("#result_list tbody tr th a")

    expect(page.locator(".chat .msg")).to_have_count(7)
    expect(page.locator(".msg-internal")).to_contain_text("internal note")
    expect(page.locator(".events")).to_contain_text("Transferred")
    expect(page.locator("img.thumb")).to_have_count(1)
    assert page.eval_on_selector("img.thumb", "img => img.complete && img.naturalWidth") == 320
    shot(page, "session-detail")

    page.click(f"#delivery-{dead.pk} button:has-text('Redeliver')")
    expect(page.locator(".messagelist")).to_contain_text("redelivered")
    dead.refresh_from_db()
    assert dead.state == Delivery.State.DELIVERED
    assert webhook_receiver.received and webhook_receiver.received[-1]["id"] == dead.event_id
    shot(page, "session-after-redeliver")

    with page.expect_download() as download_info:
        page.click("text=Export CSV")
    transcript_rows = list(csv.DictReader(io.StringIO(open(download_info.value.path(), encoding="utf-8").read())))
    assert len(transcript_rows) == 7

    page.goto("/admin/bridge/hitlsession/?q=order-4711&status=closed")
    with page.expect_download() as download_info:
        page.click("#export-sessions-csv")
    rows = list(csv.DictReader(io.StringIO(open(download_info.value.path(), encoding="utf-8").read())))
    assert [r["conversation_id"] for r in rows] == ["order-4711"]
    assert rows[0]["transfers"] == "1" and rows[0]["messages"] == "7"
    shot(page, "sessions-filtered-for-export")


def test_viewer_sees_no_buttons(page, shot, acme):
    integration, secrets = factories.integration(acme, "Main site")
    session = factories.full_session(integration, secrets, status="waiting")
    log_in(page, "bob", factories.PASSWORD)

    page.goto(f"/admin/bridge/hitlsession/{session.pk}/change/")
    expect(page.locator("#stop-handoff")).to_have_count(0)
    expect(page.locator("button:has-text('Redeliver')")).to_have_count(0)
    shot(page, "viewer-session")

    page.goto(f"/admin/bridge/integration/{integration.pk}/change/")
    expect(page.locator("#test-connection")).to_have_count(0)
    expect(page.locator("input[type=password]")).to_have_count(0)
    content = page.content()
    for secret in secrets.all():
        assert secret not in content
    shot(page, "viewer-integration")


def test_manager_retries_failed_callbacks_and_reads_the_audit_trail(page, shot, acme, webhook_receiver):
    integration, _ = factories.integration(acme, "Main site", callback_url=webhook_receiver.url)
    sessions = [factories.full_session(integration, status="closed") for _ in range(3)]
    log_in(page, "alice", factories.PASSWORD)

    page.goto(f"/admin/bridge/delivery/?tenant={acme.slug}&state=dead")
    expect(page.locator("#result_list tbody tr")).to_have_count(3)
    shot(page, "failed-callbacks")
    page.check("#action-toggle")
    page.select_option("select[name=action]", "redeliver_selected")
    page.click("button[name=index]")
    expect(page.locator(".messagelist")).to_contain_text("Queued 3 callback(s) for redelivery")
    assert not Delivery.objects.filter(session__in=sessions, state=Delivery.State.DEAD).exists()
    shot(page, "failed-callbacks-redelivered")

    page.goto(f"/admin/bridge/tenant/{acme.pk}/change/")
    page.fill("#id_transcript_retention_days", "30")
    shot(page, "tenant-retention")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")

    page.goto("/admin/dashboard/consoleauditentry/")
    expect(page.locator("#result_list")).to_contain_text("Callback redelivered")
    expect(page.locator("#result_list")).to_contain_text("transcript_retention_days")
    shot(page, "audit-trail")
