"""Every console page, action and export, for alice (manager of A), bob (viewer of A) and
charlie (manager of B): each sees and does exactly what its role allows. Another tenant's
object is a 404 that shows none of its data."""
import csv
import io

import pytest
from django.urls import reverse

from bridge.models import ApiKey, Delivery, HitlSession, Integration, Tenant
from bridge.services import livechat_setup
from dashboard.models import ConsoleAuditEntry

from . import factories

# ---------------------------------------------------------------------------------------------
# Pages of one object of tenant A


def a_objects(world):
    a = world.a
    return {
        "tenant": a.tenant.pk,
        "integration": a.integration.pk,
        "api_key": a.integration.api_keys.get().pk,
        "session": a.session.pk,
        "delivery": a.session.deliveries.filter(state=Delivery.State.DEAD).get().pk,
    }


OBJECT_PAGES = [
    ("admin:bridge_tenant_change", "tenant"),
    ("admin:bridge_tenant_history", "tenant"),
    ("admin:bridge_integration_change", "integration"),
    ("admin:bridge_integration_history", "integration"),
    ("admin:bridge_apikey_change", "api_key"),
    ("admin:bridge_hitlsession_change", "session"),
    ("admin:bridge_hitlsession_transcript_json", "session"),
    ("admin:bridge_hitlsession_transcript_csv", "session"),
    ("admin:bridge_delivery_change", "delivery"),
]


def a_markers(world) -> list[str]:
    """Strings only tenant A's data contains."""
    a = world.a
    return ["Acme", a.integration.organization_id, a.session.conversation_id, a.session.chat_id]


@pytest.mark.parametrize("url_name, kind", OBJECT_PAGES)
@pytest.mark.parametrize("who, expected", [("alice", 200), ("bob", 200), ("charlie", 404), ("root", 200)])
def test_object_pages_of_tenant_a(world, request, who, expected, url_name, kind):
    client = request.getfixturevalue(who)
    response = client.get(reverse(url_name, args=[a_objects(world)[kind]]))
    assert response.status_code == expected
    if expected == 404:
        body = response.content.decode()
        for marker in a_markers(world):
            assert marker not in body


@pytest.mark.parametrize("who, expected", [("alice", 403), ("bob", 403), ("charlie", 404), ("root", 200)])
def test_only_superusers_delete_integrations(world, request, who, expected):
    client = request.getfixturevalue(who)
    url = reverse("admin:bridge_integration_delete", args=[world.a.integration.pk])
    assert client.get(url).status_code == expected
    assert client.post(url, {"post": "yes"}).status_code == (302 if who == "root" else expected)
    assert Integration.objects.filter(pk=world.a.integration.pk).exists() == (who != "root")


def test_sessions_cannot_be_edited_or_deleted_by_anyone(world, root, alice):
    session = world.a.session
    for client in (root, alice):
        assert client.get(reverse("admin:bridge_hitlsession_add")).status_code == 403
        assert client.get(reverse("admin:bridge_hitlsession_delete", args=[session.pk])).status_code == 403


# ---------------------------------------------------------------------------------------------
# Lists, filters, overview: only the user's tenants

LISTS = [
    "console-overview",
    "admin:bridge_tenant_changelist",
    "admin:bridge_integration_changelist",
    "admin:bridge_apikey_changelist",
    "admin:bridge_hitlsession_changelist",
    "admin:bridge_delivery_changelist",
    "admin:dashboard_consoleauditentry_changelist",
]


def b_markers(world) -> list[str]:
    b = world.b
    return ["Globex", b.integration.organization_id, b.session.conversation_id, b.session.chat_id]


def _list_markers(world, url_name, tenant_world):
    t = tenant_world
    return {
        "console-overview": [t.tenant.name],
        "admin:bridge_tenant_changelist": [t.tenant.name],
        "admin:bridge_integration_changelist": [t.integration.organization_id],
        "admin:bridge_apikey_changelist": [t.integration.api_keys.get().prefix],
        "admin:bridge_hitlsession_changelist": [t.session.conversation_id],
        "admin:bridge_delivery_changelist": list(t.session.deliveries.values_list("event_id", flat=True)),
        "admin:dashboard_consoleauditentry_changelist": [f"audit-of-{t.tenant.slug}"],
    }[url_name]


@pytest.fixture
def audited(world):
    for t in (world.a, world.b):
        ConsoleAuditEntry.objects.create(tenant=t.tenant, username="x", action="integration.changed",
                                         object_repr=f"audit-of-{t.tenant.slug}")
    return world


@pytest.mark.parametrize("url_name", LISTS)
@pytest.mark.parametrize("who, sees, not_sees", [
    ("alice", "a", "b"), ("bob", "a", "b"), ("charlie", "b", "a"),
])
def test_lists_show_only_the_users_tenants(audited, request, url_name, who, sees, not_sees):
    world = audited
    response = request.getfixturevalue(who).get(reverse(url_name))
    assert response.status_code == 200
    body = response.content.decode()
    for marker in _list_markers(world, url_name, getattr(world, sees)):
        assert marker in body
    other = getattr(world, not_sees)
    for marker in [*_list_markers(world, url_name, other), other.tenant.name]:
        assert marker not in body


@pytest.mark.parametrize("url_name", LISTS)
def test_superuser_sees_every_tenant(audited, root, url_name):
    body = root.get(reverse(url_name)).content.decode()
    for t in (audited.a, audited.b):
        for marker in _list_markers(audited, url_name, t):
            assert marker in body


def test_a_tenant_filter_for_another_tenant_shows_nothing(world, charlie):
    url = reverse("admin:bridge_hitlsession_changelist") + "?tenant=acme"
    body = charlie.get(url, follow=True).content.decode()
    assert world.a.session.conversation_id not in body


def test_overview_of_another_tenant_is_404(world, charlie, alice):
    assert charlie.get(reverse("console-overview") + "?tenant=acme").status_code == 404
    assert alice.get(reverse("console-overview") + "?tenant=acme").status_code == 200


def test_staff_without_membership_sees_nothing(world, client):
    nobody = factories.staff_user("nobody")
    client.force_login(nobody)
    overview = client.get(reverse("console-overview"))
    assert overview.status_code == 200
    assert b"not a member of any tenant" in overview.content
    assert client.get(reverse("admin:bridge_hitlsession_changelist")).status_code == 403
    assert client.get(reverse("admin:bridge_integration_change", args=[world.a.integration.pk])).status_code == 404


def test_non_staff_users_are_sent_to_the_login(world, client):
    user = factories.staff_user("outside")
    user.is_staff = False
    user.save()
    factories.member(user, world.a.tenant, "manager")
    client.force_login(user)
    response = client.get(reverse("admin:bridge_hitlsession_change", args=[world.a.session.pk]))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


# ---------------------------------------------------------------------------------------------
# Changing an integration




@pytest.mark.parametrize("who, expected", [("alice", 302), ("bob", 403), ("charlie", 404)])
def test_editing_an_integration(world, request, who, expected):
    integration = world.a.integration
    url = reverse("admin:bridge_integration_change", args=[integration.pk])
    response = request.getfixturevalue(who).post(url, factories.integration_form_data(integration, name="Renamed"))
    assert response.status_code == expected
    integration.refresh_from_db()
    assert (integration.name == "Renamed") == (who == "alice")


def test_viewer_gets_a_read_only_form(world, bob, alice):
    url = reverse("admin:bridge_integration_change", args=[world.a.integration.pk])
    viewer = bob.get(url).content.decode()
    assert 'name="new_agent_token"' not in viewer and 'name="_save"' not in viewer
    assert "test-connection" not in viewer and "new-api-key" not in viewer
    manager = alice.get(url).content.decode()
    assert 'name="new_agent_token"' in manager and 'name="_save"' in manager
    assert 'id="test-connection"' in manager and 'id="new-api-key"' in manager


@pytest.mark.parametrize("who, tenant_slug, created", [
    ("alice", "acme", True), ("charlie", "acme", False), ("charlie", "globex", True),
])
def test_adding_an_integration_only_in_a_managed_tenant(world, request, who, tenant_slug, created):
    tenant = Tenant.objects.get(slug=tenant_slug)
    response = request.getfixturevalue(who).post(reverse("admin:bridge_integration_add"), {
        "tenant": tenant.pk, "name": "New one", "client_id": "c", "organization_id": "o", "group_id": 0,
        "callback_url": "", "enabled": "on", "new_agent_token": "YWNjb3VudDpwYXQ=",
        "new_webhook_secret": "", "new_callback_secret": "",
    })
    assert response.status_code == 200  # the one-time page, or the form with its error
    assert Integration.objects.filter(tenant=tenant, name="New one").exists() == created
    if not created:
        assert b"Select a valid choice" in response.content


def test_viewer_cannot_add(world, bob):
    assert bob.get(reverse("admin:bridge_integration_add")).status_code == 403
    assert bob.get(reverse("admin:bridge_apikey_add")).status_code == 403


def test_tenant_choices_are_the_managed_tenants(world, alice, root):
    body = alice.get(reverse("admin:bridge_integration_add")).content.decode()
    assert "Acme" in body and "Globex" not in body
    body = root.get(reverse("admin:bridge_integration_add")).content.decode()
    assert "Acme" in body and "Globex" in body


# ---------------------------------------------------------------------------------------------
# Actions on one integration: POST only; manager yes, viewer 403, outsider 404


@pytest.fixture
def fake_livechat(monkeypatch):
    calls = []

    def check_connection(*, integration):
        calls.append(("check", integration.pk))
        return livechat_setup.ConnectionReport([livechat_setup.CheckStep("Group", True, "group 0 found")])

    def register_webhooks(*, integration):
        calls.append(("register", integration.pk))
        integration.registered_webhooks = {"incoming_event": "hook-1"}
        integration.save()
        return livechat_setup.WebhookRegistration({"incoming_event": "hook-1"}, ["incoming_event"], [])

    monkeypatch.setattr(livechat_setup, "check_connection", check_connection)
    monkeypatch.setattr(livechat_setup, "register_webhooks", register_webhooks)
    return calls


INTEGRATION_ACTIONS = [
    "admin:bridge_integration_test_connection",
    "admin:bridge_integration_register_webhooks",
    "admin:bridge_integration_rotate_callback_secret",
    "admin:bridge_integration_new_api_key",
]


@pytest.mark.parametrize("url_name", INTEGRATION_ACTIONS)
@pytest.mark.parametrize("who, expected", [("alice", (200, 302)), ("bob", (403,)), ("charlie", (404,))])
def test_integration_actions(world, request, fake_livechat, url_name, who, expected):
    integration = world.a.integration
    client = request.getfixturevalue(who)
    url = reverse(url_name, args=[integration.pk])
    assert client.get(url).status_code in ((405,) if who != "charlie" else (404, 405))
    secret_before, keys_before = integration.callback_secret, integration.api_keys.count()
    response = client.post(url, {"name": "second bot"})
    assert response.status_code in expected
    integration.refresh_from_db()
    acted = who == "alice"
    assert bool(fake_livechat) == (acted and url_name in INTEGRATION_ACTIONS[:2])
    assert (integration.callback_secret != secret_before) == (acted and url_name.endswith("rotate_callback_secret"))
    assert (integration.api_keys.count() == keys_before + 1) == (acted and url_name.endswith("new_api_key"))
    assert ConsoleAuditEntry.objects.filter(tenant=world.a.tenant).exists() == acted


@pytest.mark.parametrize("who, expected", [("alice", 302), ("bob", 403), ("charlie", 404)])
def test_revoking_an_api_key(world, request, who, expected):
    api_key = world.a.integration.api_keys.get()
    response = request.getfixturevalue(who).post(reverse("admin:bridge_apikey_revoke", args=[api_key.pk]))
    assert response.status_code == expected
    api_key.refresh_from_db()
    assert (api_key.revoked_at is not None) == (who == "alice")


def test_bulk_revoke_skips_keys_the_user_does_not_manage(world, alice):
    a_key = world.a.integration.api_keys.get()
    b_key = world.b.integration.api_keys.get()
    alice.post(reverse("admin:bridge_apikey_changelist"), {
        "action": "revoke_selected", "_selected_action": [a_key.pk, b_key.pk]})
    a_key.refresh_from_db()
    b_key.refresh_from_db()
    assert a_key.revoked_at is not None
    assert b_key.revoked_at is None


def test_creating_an_api_key_through_the_add_form(world, alice, charlie):
    url = reverse("admin:bridge_apikey_add")
    response = alice.post(url, {"integration": world.a.integration.pk, "name": "staging bot"})
    assert response.status_code == 200
    key = ApiKey.objects.get(name="staging bot")
    assert b"staging bot" in response.content and key.prefix.encode() in response.content
    response = charlie.post(url, {"integration": world.a.integration.pk, "name": "sneaky"})
    assert not ApiKey.objects.filter(name="sneaky").exists()


# ---------------------------------------------------------------------------------------------
# Sessions: stop, redeliver, exports


@pytest.fixture
def fake_stop(monkeypatch):
    from bridge.services import lifecycle, sessions

    stopped = []

    def stop_session(*, session, reason="", closed_by="bot"):
        stopped.append(session.pk)
        lifecycle.close_session(session=session, closed_by=closed_by, reason=reason)
        session.refresh_from_db()
        return session

    monkeypatch.setattr(sessions, "stop_session", stop_session)
    return stopped


@pytest.mark.parametrize("who, expected", [("alice", 302), ("bob", 403), ("charlie", 404)])
def test_stopping_a_handoff(world, request, fake_stop, who, expected):
    session = world.a.session
    client = request.getfixturevalue(who)
    url = reverse("admin:bridge_hitlsession_stop", args=[session.pk])
    response = client.post(url)
    assert response.status_code == expected
    session.refresh_from_db()
    assert (session.status == HitlSession.Status.CLOSED) == (who == "alice")
    if who == "alice":
        assert session.closed_by == "staff:alice"
        entry = ConsoleAuditEntry.objects.get(action="session.stopped")
        assert entry.username == "alice" and entry.tenant == world.a.tenant


def test_stop_button_only_for_managers_of_open_sessions(world, alice, bob):
    url = reverse("admin:bridge_hitlsession_change", args=[world.a.session.pk])
    assert b'id="stop-handoff"' in alice.get(url).content
    assert b'id="stop-handoff"' not in bob.get(url).content
    HitlSession.objects.filter(pk=world.a.session.pk).update(status="closed")
    assert b'id="stop-handoff"' not in alice.get(url).content


@pytest.mark.parametrize("who, expected", [("alice", 302), ("bob", 403), ("charlie", 404)])
def test_redelivering_a_dead_callback(world, request, who, expected):
    dead = world.a.session.deliveries.get(state=Delivery.State.DEAD)
    response = request.getfixturevalue(who).post(reverse("admin:bridge_delivery_redeliver", args=[dead.pk]))
    assert response.status_code == expected
    dead.refresh_from_db()
    assert (dead.state == Delivery.State.PENDING) == (who == "alice")  # queued again (sent after commit)
    assert ConsoleAuditEntry.objects.filter(action="delivery.redelivered").exists() == (who == "alice")


def test_redeliver_buttons_only_for_managers(world, alice, bob):
    url = reverse("admin:bridge_hitlsession_change", args=[world.a.session.pk])
    assert b"Redeliver</button>" in alice.get(url).content
    assert b"Redeliver</button>" not in bob.get(url).content


def test_bulk_redeliver_skips_other_tenants(world, alice):
    a_dead = world.a.session.deliveries.get(state=Delivery.State.DEAD)
    b_dead = world.b.session.deliveries.get(state=Delivery.State.DEAD)
    alice.post(reverse("admin:bridge_delivery_changelist"), {
        "action": "redeliver_selected", "_selected_action": [a_dead.pk, b_dead.pk]})
    a_dead.refresh_from_db()
    b_dead.refresh_from_db()
    assert a_dead.state == Delivery.State.PENDING
    assert b_dead.state == Delivery.State.DEAD


def _csv(response) -> list[dict]:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.DictReader(io.StringIO(body.decode())))


@pytest.mark.parametrize("who, tenants", [
    ("alice", {"acme"}), ("bob", {"acme"}), ("charlie", {"globex"}), ("root", {"acme", "globex"}),
])
def test_session_export_holds_only_the_users_tenants(world, request, who, tenants):
    response = request.getfixturevalue(who).get(reverse("admin:bridge_hitlsession_export"))
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert {row["tenant"] for row in _csv(response)} == tenants


def test_session_export_ignores_a_tenant_filter_for_another_tenant(world, charlie):
    response = charlie.get(reverse("admin:bridge_hitlsession_export") + "?tenant=acme")
    rows = _csv(response) if response.status_code == 200 else []
    assert all(row["tenant"] != "acme" for row in rows)


def test_audit_trail_is_per_tenant(world, alice, charlie, fake_livechat):
    alice.post(reverse("admin:bridge_integration_test_connection", args=[world.a.integration.pk]))
    url = reverse("admin:dashboard_consoleauditentry_changelist")
    row = f'<td class="field-object_repr">{world.a.integration}</td>'
    assert row in alice.get(url).content.decode()
    assert str(world.a.integration) not in charlie.get(url).content.decode()


def test_memberships_are_for_superusers_only(world, alice, root):
    url = reverse("admin:bridge_membership_changelist")
    assert alice.get(url).status_code == 403
    assert root.get(url).status_code == 200
    tenant_page = alice.get(reverse("admin:bridge_tenant_change", args=[world.a.tenant.pk])).content
    assert b"memberships-TOTAL_FORMS" not in tenant_page
    assert b"memberships-TOTAL_FORMS" in root.get(reverse("admin:bridge_tenant_change", args=[world.a.tenant.pk])).content


@pytest.mark.parametrize("who, expected", [("alice", 302), ("bob", 403), ("charlie", 404)])
def test_changing_the_tenants_retention(world, request, who, expected):
    tenant = world.a.tenant
    response = request.getfixturevalue(who).post(
        reverse("admin:bridge_tenant_change", args=[tenant.pk]),
        {"name": tenant.name, "transcript_retention_days": 30},
    )
    assert response.status_code == expected
    tenant.refresh_from_db()
    assert (tenant.transcript_retention_days == 30) == (who == "alice")
    assert tenant.slug == "acme"


def test_deleting_integrations_is_audited(world, root):
    root.post(reverse("admin:bridge_integration_changelist"), {
        "action": "delete_selected", "_selected_action": [world.b.integration.pk], "post": "yes"})
    assert not Integration.objects.filter(pk=world.b.integration.pk).exists()
    entry = ConsoleAuditEntry.objects.get(action="integration.deleted")
    assert entry.username == "root" and entry.tenant == world.b.tenant
