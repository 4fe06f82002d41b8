"""No rendered page carries a secret: webhook secret, agent token, callback secret, customer
tokens and cookies, raw API keys. The crawler follows every console link a user can reach
(lists, filters, change/add/history/delete pages, exports), for a superuser, a manager and a
viewer; the pages that answer a POST are checked too."""
import base64
import re
from collections import deque

import pytest
from django.urls import reverse

from bridge.models import Delivery
from bridge.services.api_keys import create_api_key
from bridge.services import livechat_setup
from dashboard.models import ConsoleAuditEntry

from . import factories

# Every factory secret contains one of these; a masked secret (••••abcd) does not.
MARKERS = ["WEBHOOKSECRET", "PATSECRET", "AGENTACCOUNT", "CUSTOMERTOKEN", "secretcookie", "whsec_", "hitl_"]
HREF = re.compile(r'href="(/admin/[^"#]*)"')
SKIP = ("/admin/logout/", "/admin/password_change/", "/admin/jsi18n/", "/admin/auth/", "/admin/r/")
MAX_PAGES = 600


def forbidden_strings(world) -> list[str]:
    strings = list(world.all_secrets)
    for t in (world.a, world.b):
        strings.extend(base64.b64decode(t.secrets.agent_token).decode().split(":"))
    return strings


def assert_clean(body: str, world, where: str) -> None:
    for secret in forbidden_strings(world):
        assert secret not in body, f"a secret is rendered on {where}"
    for marker in MARKERS:
        if marker == "hitl_":
            # API key prefixes (hitl_<hex>) are public; a raw key is prefix + "_" + 43 chars.
            assert not re.search(r"hitl_[0-9a-f]{12}_[A-Za-z0-9_\-]{20,}", body), f"a raw API key on {where}"
        elif marker == "whsec_":
            assert not re.search(r"whsec_[A-Za-z0-9+/=]{8,}", body), f"a callback secret on {where}"
        else:
            assert marker not in body, f"{marker} rendered on {where}"


def body_of(response) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def crawl(client, world, start_urls) -> set[str]:
    seen, queue = set(), deque(start_urls)
    while queue and len(seen) < MAX_PAGES:
        url = queue.popleft()
        if url in seen or url.startswith(SKIP):
            continue
        seen.add(url)
        response = client.get(url)
        assert response.status_code in (200, 302, 403, 404), (url, response.status_code)
        if response.status_code != 200:
            continue
        body = body_of(response)
        assert_clean(body, world, url)
        if response["Content-Type"].startswith("text/html"):
            for link in HREF.findall(body):
                link = link.replace("&amp;", "&")
                if link not in seen:
                    queue.append(link)
    return seen


@pytest.fixture
def rich_world(world):
    """More rows that hold or name secrets: audit entries, a revoked key, a purged session."""
    for t in (world.a, world.b):
        key, _ = create_api_key(integration=t.integration, name="old")
        key.revoked_at = key.created_at
        key.save()
        ConsoleAuditEntry.objects.create(tenant=t.tenant, username="alice", action="integration.changed",
                                         object_type="integration", object_id=str(t.integration.pk),
                                         object_repr=str(t.integration),
                                         changed_fields=["agent_token", "webhook_secret"])
        factories.full_session(t.integration, t.secrets, status="closed")
    return world


START = [
    "/admin/",
    "/admin/bridge/",
    "/admin/dashboard/",
    "/admin/bridge/hitlsession/?q=conv",
    "/admin/bridge/hitlsession/?status=closed&created_from=2020-01-01&created_to=2100-01-01",
]


@pytest.mark.parametrize("who", ["root", "alice", "bob"])
def test_no_page_renders_a_secret(rich_world, request, who):
    client = request.getfixturevalue(who)
    world = rich_world
    start = list(START)
    for t in (world.a, world.b):
        start += [
            reverse("admin:bridge_integration_change", args=[t.integration.pk]),
            reverse("admin:bridge_integration_delete", args=[t.integration.pk]),
            reverse("admin:bridge_tenant_delete", args=[t.tenant.pk]),
            reverse("admin:bridge_hitlsession_transcript_json", args=[t.session.pk]),
            reverse("admin:bridge_hitlsession_transcript_csv", args=[t.session.pk]),
        ]
    start += [reverse("admin:bridge_hitlsession_export"), reverse("admin:bridge_integration_add"),
              reverse("admin:bridge_apikey_add")]
    seen = crawl(client, world, start)
    # The crawl reached every kind of page.
    for fragment in ("/bridge/integration/", "/bridge/apikey/", "/bridge/hitlsession/", "/bridge/delivery/",
                     "/bridge/tenant/", "/dashboard/consoleauditentry/", "/history/", "/change/"):
        assert any(fragment in url for url in seen), fragment
    print(f"{who}: {len(seen)} pages crawled")
    assert len(seen) > 40


def test_pages_answering_a_post_render_no_old_secret(world, alice, monkeypatch):
    a = world.a
    monkeypatch.setattr(livechat_setup, "check_connection", lambda *, integration: livechat_setup.ConnectionReport(
        [livechat_setup.CheckStep("Group", False, "LiveChat refused the agent token")]))
    pages = [
        alice.post(reverse("admin:bridge_integration_test_connection", args=[a.integration.pk]), follow=True),
        alice.post(reverse("admin:bridge_integration_new_api_key", args=[a.integration.pk]), {"name": "n"}),
        alice.post(reverse("admin:bridge_integration_rotate_callback_secret", args=[a.integration.pk])),
        alice.post(reverse("admin:bridge_apikey_add"), {"integration": a.integration.pk, "name": "k"}),
        alice.post(reverse("admin:bridge_integration_change", args=[a.integration.pk]), {
            "name": a.integration.name, "client_id": "c", "organization_id": "o", "group_id": "-1",  # invalid
            "callback_url": "", "new_agent_token": "bm90OnNlY3JldA==", "new_webhook_secret": "TYPEDSECRET-123456",
            "new_callback_secret": ""}),
    ]
    for response in pages:
        body = body_of(response)
        for secret in world.all_secrets:
            assert secret not in body
    # A form with errors does not echo the secrets just typed either.
    assert "TYPEDSECRET-123456" not in body_of(pages[-1]) and "bm90OnNlY3JldA==" not in body_of(pages[-1])


def test_one_time_pages_show_the_new_secret_once_and_never_cache(world, alice):
    a = world.a
    response = alice.post(reverse("admin:bridge_integration_rotate_callback_secret", args=[a.integration.pk]))
    a.integration.refresh_from_db()
    assert a.integration.callback_secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    page = alice.get(reverse("admin:bridge_integration_change", args=[a.integration.pk])).content.decode()
    assert a.integration.callback_secret not in page
    assert "••••" + a.integration.callback_secret[-4:] in page


def test_the_audit_trail_names_secret_fields_never_their_values(world, alice):
    a = world.a
    alice.post(reverse("admin:bridge_integration_change", args=[a.integration.pk]), {
        "name": a.integration.name, "client_id": a.integration.client_id,
        "organization_id": a.integration.organization_id, "group_id": 0, "callback_url": "",
        "enabled": "on", "new_agent_token": "bmV3OnRva2Vu", "new_webhook_secret": "NEW-WEBHOOK-SECRET-42",
        "new_callback_secret": ""})
    entry = ConsoleAuditEntry.objects.get(action="integration.changed")
    assert entry.changed_fields == ["agent_token", "callback_url", "webhook_secret"]
    stored = repr(list(ConsoleAuditEntry.objects.values()))
    assert "NEW-WEBHOOK-SECRET-42" not in stored and "bmV3OnRva2Vu" not in stored
    from django.contrib.admin.models import LogEntry

    assert "NEW-WEBHOOK-SECRET-42" not in repr(list(LogEntry.objects.values()))


def test_raw_payloads_are_redacted_on_the_session_page(world, alice):
    page = alice.get(reverse("admin:bridge_hitlsession_change", args=[world.a.session.pk])).content.decode()
    assert "raw payload" in page and "[redacted]" in page
    assert world.a.secrets.webhook_secret not in page


def test_dead_delivery_pages_are_clean(world, alice):
    dead = world.a.session.deliveries.get(state=Delivery.State.DEAD)
    page = alice.get(reverse("admin:bridge_delivery_change", args=[dead.pk])).content.decode()
    assert_clean(page, world, "delivery page")
    assert "upstream exploded" in page
