"""What the pages show: the integration form's write-only secrets, the transcript as a chat
beside the timeline, list filters and search, and the exports' content."""
import csv
import io
import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from bridge.models import ApiKey, HitlSession, Integration, Message
from bridge.services.api_keys import authenticate_api_key
from dashboard.models import ConsoleAuditEntry

from . import factories




# ---- write-only secrets


def test_a_blank_secret_keeps_the_stored_one(world, alice):
    a = world.a
    url = reverse("admin:bridge_integration_change", args=[a.integration.pk])
    assert alice.post(url, factories.integration_form_data(a.integration, group_id=5)).status_code == 302
    integration = Integration.objects.get(pk=a.integration.pk)
    assert integration.group_id == 5
    assert (integration.webhook_secret, integration.agent_token, integration.callback_secret) == (
        a.secrets.webhook_secret, a.secrets.agent_token, a.secrets.callback_secret)
    entry = ConsoleAuditEntry.objects.get(action="integration.changed")
    assert entry.changed_fields == ["group_id"] and entry.username == "alice"


def test_a_typed_secret_replaces_the_stored_one(world, alice):
    a = world.a
    url = reverse("admin:bridge_integration_change", args=[a.integration.pk])
    secret = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"
    alice.post(url, factories.integration_form_data(a.integration, new_agent_token="bmV3OnRva2Vu", new_callback_secret=secret))
    integration = Integration.objects.get(pk=a.integration.pk)
    assert integration.agent_token == "bmV3OnRva2Vu" and integration.callback_secret == secret
    assert integration.webhook_secret == a.secrets.webhook_secret


@pytest.mark.parametrize("field, value, error", [
    ("new_agent_token", "not base64!!", "not Base64"),
    ("new_agent_token", "bm9jb2xvbg==", "account_id:personal_access_token"),
    ("new_callback_secret", "whsec_c2hvcnQ=", "at least 16"),
])
def test_secret_inputs_are_validated(world, alice, field, value, error):
    url = reverse("admin:bridge_integration_change", args=[world.a.integration.pk])
    response = alice.post(url, factories.integration_form_data(world.a.integration, **{field: value}))
    assert response.status_code == 200 and error in response.content.decode()


def test_the_form_shows_secrets_masked(world, alice):
    a = world.a
    page = alice.get(reverse("admin:bridge_integration_change", args=[a.integration.pk])).content.decode()
    assert f"Stored: ••••{a.secrets.webhook_secret[-4:]}" in page
    assert 'type="password"' in page and 'value="' + a.secrets.webhook_secret not in page
    assert a.integration.webhook_url in page  # the URL to copy


def test_adding_generates_secrets_and_shows_them_once(world, alice):
    response = alice.post(reverse("admin:bridge_integration_add"), {
        "tenant": world.a.tenant.pk, "name": "Shop", "client_id": "c", "organization_id": "o", "group_id": 2,
        "callback_url": "https://bot.example.com/cb", "enabled": "on", "new_agent_token": "YWNjb3VudDpwYXQ=",
        "new_webhook_secret": "", "new_callback_secret": ""})
    integration = Integration.objects.get(name="Shop")
    page = response.content.decode()
    raw_key = page.split('id="secret-1" class="mono one-time-secret" type="text" readonly value="')[1].split('"')[0]
    assert authenticate_api_key(raw_key).integration == integration
    assert integration.callback_secret in page and integration.callback_secret.startswith("whsec_")
    assert len(integration.webhook_secret) >= 32 and integration.webhook_secret not in page
    assert integration.webhook_url in page
    actions = set(ConsoleAuditEntry.objects.filter(tenant=world.a.tenant).values_list("action", flat=True))
    assert actions == {"integration.created", "api_key.created"}
    # Never again.
    later = alice.get(reverse("admin:bridge_integration_change", args=[integration.pk])).content.decode()
    assert raw_key not in later and integration.callback_secret not in later


def test_adding_a_disabled_integration_with_a_given_callback_secret(world, alice):
    secret = "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"
    response = alice.post(reverse("admin:bridge_integration_add"), {
        "tenant": world.a.tenant.pk, "name": "Off", "client_id": "c", "organization_id": "o", "group_id": 0,
        "callback_url": "", "new_agent_token": "YWNjb3VudDpwYXQ=", "new_webhook_secret": "given-secret-0123456789",
        "new_callback_secret": secret})
    integration = Integration.objects.get(name="Off")
    assert not integration.enabled
    assert integration.callback_secret == secret and integration.webhook_secret == "given-secret-0123456789"
    assert secret not in response.content.decode()  # the manager typed it: not echoed


def test_new_api_key_and_revoke_from_the_integration_page(world, alice):
    a = world.a
    response = alice.post(reverse("admin:bridge_integration_new_api_key", args=[a.integration.pk]), {"name": "prod"})
    raw_key = response.content.decode().split('readonly value="')[1].split('"')[0]
    key = ApiKey.objects.get(name="prod")
    assert authenticate_api_key(raw_key) == key
    page = alice.get(reverse("admin:bridge_integration_change", args=[a.integration.pk])).content.decode()
    assert key.prefix in page and raw_key not in page
    alice.post(reverse("admin:bridge_apikey_revoke", args=[key.pk]))
    assert authenticate_api_key(raw_key) is None
    assert list(ConsoleAuditEntry.objects.filter(object_id=str(key.pk)).values_list("action", flat=True)) == [
        "api_key.revoked", "api_key.created"]


# ---- the session page


def test_the_transcript_is_a_chat_beside_the_timeline(world, bob):
    page = bob.get(reverse("admin:bridge_hitlsession_change", args=[world.a.session.pk])).content.decode()
    assert page.count('class="msg msg-user') == 3 and page.count('class="msg msg-agent') == 3
    assert 'class="msg msg-bot' in page
    assert "msg-internal" in page and "internal note" in page
    assert 'href="https://cdn.livechat-files.com/api/file/invoice.pdf"' in page and "invoice.pdf" in page
    assert '<img class="thumb" src="https://cdn.example.com/photo.png"' in page
    assert "not delivered to LiveChat: LiveChat said entity_too_large" in page
    for title in ("Handoff started", "Assigned", "Transferred", "Error"):
        assert title in page
    assert "queue position" in page and "manual" in page  # transfer reason and queue
    assert "upstream exploded" in page and "HTTP 500" in page  # the dead callback's last answer


def test_links_from_chats_are_http_only(world, alice):
    session = world.a.session
    Message.objects.create(session=session, direction="to_bot", author="agent", kind="file",
                           url="javascript:alert(1)", delivery_state="received")
    Message.objects.filter(session=session, kind="file", url__startswith="javascript").update(
        url="javascript:alert(1)")
    page = alice.get(reverse("admin:bridge_hitlsession_change", args=[session.pk])).content.decode()
    assert "javascript:alert" not in page


def test_message_text_is_escaped(world, alice):
    Message.objects.create(session=world.a.session, direction="to_agent", author="user",
                           text="<script>alert('x')</script>", delivery_state="sent")
    page = alice.get(reverse("admin:bridge_hitlsession_change", args=[world.a.session.pk])).content.decode()
    assert "<script>alert" not in page and "&lt;script&gt;" in page


def test_timeline_shows_who_closed_and_why(world, alice):
    session = factories.full_session(world.a.integration, status="closed")
    page = alice.get(reverse("admin:bridge_hitlsession_change", args=[session.pk])).content.decode()
    assert "by <strong>smith@example.com</strong>" in page and "solved" in page


def test_a_missing_session_is_404(world, alice):
    url = reverse("admin:bridge_hitlsession_change", args=["00000000-0000-0000-0000-000000000000"])
    assert alice.get(url).status_code == 404
    assert alice.get("/admin/bridge/hitlsession/not-a-uuid/change/").status_code == 404


# ---- the list


@pytest.fixture
def many(world):
    integration = world.a.integration
    now = timezone.now()
    s1 = factories.session(integration, conversation_id="order-1", status="closed",
                           created_at=now - timedelta(days=10), agent=("jane@example.com", "Jane Doe"))
    s2 = factories.session(integration, conversation_id="order-2", status="assigned", created_at=now,
                           user=factories.end_user(integration, "ext-42", name="Zoë Example"))
    return s1, s2


@pytest.mark.parametrize("query, expected", [
    ("?q=order-1", {"order-1"}),
    ("?q=ext-42", {"order-2"}),
    ("?q=Zo%C3%AB", {"order-2"}),
    ("?status=closed", {"order-1"}),
    ("?status=open", {"order-2", "conv-acme"}),
    ("?agent=jane%40example.com", {"order-1"}),
])
def test_filters_and_search(many, alice, query, expected):
    response = alice.get(reverse("admin:bridge_hitlsession_changelist") + query)
    shown = {s.conversation_id for s in response.context["cl"].result_list}
    assert shown == expected


def test_date_range_filter(many, alice):
    day = (timezone.now() - timedelta(days=10)).date().isoformat()
    url = reverse("admin:bridge_hitlsession_changelist") + f"?created_from={day}&created_to={day}"
    response = alice.get(url)
    assert {s.conversation_id for s in response.context["cl"].result_list} == {"order-1"}
    assert f'value="{day}"' in response.content.decode()


def test_a_chat_id_search(many, alice):
    s1, _ = many
    response = alice.get(reverse("admin:bridge_hitlsession_changelist") + f"?q={s1.chat_id}")
    assert [s.pk for s in response.context["cl"].result_list] == [s1.pk]


# ---- exports


def test_transcript_json(world, bob):
    response = bob.get(reverse("admin:bridge_hitlsession_transcript_json", args=[world.a.session.pk]))
    assert response["Content-Disposition"].startswith('attachment; filename="transcript-conv-acme-')
    document = json.loads(response.content)
    assert document["session"]["conversation_id"] == "conv-acme"
    assert document["session"]["tenant"] == "acme"
    assert [m["author"] for m in document["messages"]][:3] == ["user", "bot", "agent"]
    assert any(m["internal"] for m in document["messages"])
    kinds = [e["kind"] for e in document["events"]]
    assert kinds == ["started", "assigned", "transferred", "error"]
    assert document["events"][2]["data"]["queue"] == {"position": 2, "wait_time": 30}


def test_transcript_csv_escapes_formulas(world, bob):
    Message.objects.create(session=world.a.session, direction="to_agent", author="user", text="=HYPERLINK(1)",
                           delivery_state="sent")
    response = bob.get(reverse("admin:bridge_hitlsession_transcript_csv", args=[world.a.session.pk]))
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 8
    assert rows[-1]["text"] == "'=HYPERLINK(1)"
    assert rows[0]["author"] == "user"


def test_sessions_csv_for_a_date_range_is_streamed(many, alice):
    s1, s2 = many
    day = timezone.now().date().isoformat()
    response = alice.get(reverse("admin:bridge_hitlsession_export") + f"?created_from={day}&created_to={day}")
    assert response.streaming
    assert response["Content-Disposition"] == f'attachment; filename="sessions-{day}-{day}.csv"'
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {r["conversation_id"] for r in rows} == {"conv-acme", "order-2"}
    acme = next(r for r in rows if r["conversation_id"] == "conv-acme")
    assert (acme["messages"], acme["transfers"], acme["failed_callbacks"]) == ("7", "1", "1")
    order2 = next(r for r in rows if r["conversation_id"] == "order-2")
    assert order2["user_name"] == "Zoë Example" and order2["agent_name"] == "John Smith"


def test_export_link_keeps_the_lists_filters(many, alice):
    page = alice.get(reverse("admin:bridge_hitlsession_changelist") + "?status=closed").content.decode()
    assert reverse("admin:bridge_hitlsession_export") + "?status=closed" in page
    rows = list(csv.DictReader(io.StringIO(b"".join(
        alice.get(reverse("admin:bridge_hitlsession_export") + "?status=closed").streaming_content).decode())))
    assert [r["conversation_id"] for r in rows] == ["order-1"]
    assert HitlSession.objects.filter(status="closed").count() == 1
