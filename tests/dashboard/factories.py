"""Rows for console tests: tenants, staff with roles, integrations with distinctive secrets, and
sessions with transcripts, audit events and callbacks. Secrets are unique strings, so a test can
search every rendered page for them."""
from __future__ import annotations

import base64
import itertools
import json
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from bridge.models import (
    Delivery,
    DeliveryAttempt,
    EndUser,
    HitlSession,
    Integration,
    Membership,
    Message,
    SessionEvent,
    Tenant,
)
from bridge.services.integrations import create_integration

PASSWORD = "correct horse battery staple"
_counter = itertools.count(1)


@dataclass
class Secrets:
    webhook_secret: str
    agent_token: str
    callback_secret: str
    api_key: str
    customer_tokens: list[str] = field(default_factory=list)
    customer_cookies: list[str] = field(default_factory=list)

    def all(self) -> list[str]:
        return [self.webhook_secret, self.agent_token, self.callback_secret, self.api_key,
                *self.customer_tokens, *self.customer_cookies]


def staff_user(username: str, *, superuser: bool = False):
    User = get_user_model()
    user = User.objects.create_user(username, f"{username}@example.org", PASSWORD, is_staff=True,
                                    is_superuser=superuser)
    return user


def member(user, tenant: Tenant, role: str) -> Membership:
    return Membership.objects.create(user=user, tenant=tenant, role=role)


def tenant(slug: str, name: str | None = None, **fields) -> Tenant:
    return Tenant.objects.create(slug=slug, name=name or slug.title(), **fields)


def integration(tenant: Tenant, name: str = "main", *, callback_url: str = "http://127.0.0.1:9/bot",
                **overrides) -> tuple[Integration, Secrets]:
    tag = f"{tenant.slug}-{name}-{next(_counter)}"
    agent_token = base64.b64encode(f"AGENTACCOUNT-{tag}:PATSECRET-{tag}".encode()).decode()
    fields = dict(
        client_id=f"client-{tag}",
        organization_id=f"org-{tag}",
        group_id=0,
        webhook_secret=f"WEBHOOKSECRET-{tag}-x9",
        agent_token=agent_token,
        callback_url=callback_url,
    )
    fields.update(overrides)
    row, raw_key = create_integration(tenant=tenant, name=name, **fields)
    return row, Secrets(fields["webhook_secret"], fields["agent_token"], row.callback_secret, raw_key)


def end_user(integration: Integration, external_id: str | None = None, *, secrets: Secrets | None = None,
             **fields) -> EndUser:
    n = next(_counter)
    external_id = external_id or f"user-{n}"
    token = f"dal:CUSTOMERTOKEN-{integration.pk}-{n}"
    cookies = json.dumps({"__lc_cid": f"CID-{n}-secretcookie", "__lc_cst": f"CST-{n}-secretcookie"})
    row = EndUser.objects.create(
        integration=integration, external_id=external_id, name=fields.pop("name", f"User {n}"),
        email=fields.pop("email", f"user{n}@example.com"), livechat_customer_id=f"cust-{n}",
        customer_token=token, customer_token_expires_at=timezone.now() + timedelta(hours=8),
        customer_cookies=cookies, **fields,
    )
    if secrets is not None:
        secrets.customer_tokens.append(token)
        secrets.customer_cookies.extend([f"CID-{n}-secretcookie", f"CST-{n}-secretcookie"])
    return row


def session(integration: Integration, *, user: EndUser | None = None, status: str = HitlSession.Status.ASSIGNED,
            created_at: datetime | None = None, first_reply_after: timedelta | None = None,
            agent: tuple[str, str] = ("smith@example.com", "John Smith"), conversation_id: str | None = None,
            **fields) -> HitlSession:
    n = next(_counter)
    user = user or end_user(integration)
    agent_id, agent_name = agent if status in ("assigned", "closed") else ("", "")
    row = HitlSession.objects.create(
        integration=integration, end_user=user, conversation_id=conversation_id or f"conv-{n}",
        chat_id=fields.pop("chat_id", f"CHAT{n:06d}"), thread_id=fields.pop("thread_id", f"THR{n:05d}"),
        status=status, agent_id=agent_id, agent_name=agent_name, **fields,
    )
    created_at = created_at or timezone.now()
    updates = {"created_at": created_at}
    if first_reply_after is not None:
        updates["first_agent_reply_at"] = created_at + first_reply_after
        updates["assigned_at"] = created_at + first_reply_after / 2
    if status == HitlSession.Status.CLOSED:
        updates.update(closed_at=created_at + timedelta(minutes=20), closed_by=agent_id or "bot",
                       close_reason="solved")
    HitlSession.objects.filter(pk=row.pk).update(**updates)
    row.refresh_from_db()
    return row


def transcript(session: HitlSession, *, messages: int = 4, secrets: Secrets | None = None) -> None:
    """A small chat: user, bot, agent, an internal note, a file and an image."""
    rows = []
    for i in range(messages):
        author, direction = [("user", "to_agent"), ("bot", "to_agent"), ("agent", "to_bot")][i % 3]
        rows.append(Message(session=session, direction=direction, author=author, text=f"message {i} from {author}",
                            agent_id="smith@example.com" if author == "agent" else "",
                            delivery_state="sent" if direction == "to_agent" else "received",
                            livechat_event_id=f"{session.thread_id}_{next(_counter)}"))
    rows.append(Message(session=session, direction="to_bot", author="agent", text="customer looks upset, be kind",
                        internal=True, agent_id="jane@example.com", delivery_state="received"))
    rows.append(Message(session=session, direction="to_bot", author="agent", kind="file",
                        url="https://cdn.livechat-files.com/api/file/invoice.pdf",
                        payload={"name": "invoice.pdf", "content_type": "application/pdf"},
                        agent_id="smith@example.com", delivery_state="received"))
    rows.append(Message(session=session, direction="to_agent", author="user", kind="image",
                        url="https://cdn.example.com/photo.png", delivery_state="failed",
                        last_error="LiveChat said entity_too_large"))
    Message.objects.bulk_create(rows)


def audit_events(session: HitlSession, *, secrets: Secrets | None = None) -> None:
    raw = {"webhook_id": "wh1", "action": "chat_transferred", "organization_id": "org",
           "secret_key": secrets.webhook_secret if secrets else "x",
           "payload": {"chat_id": session.chat_id, "reason": "manual"}}
    SessionEvent.objects.bulk_create([
        SessionEvent(session=session, kind="started", actor="bot", summary="handoff started",
                     data={"group_id": 0}),
        SessionEvent(session=session, kind="assigned", actor="smith@example.com", summary="John Smith joined",
                     data={"agent": {"id": "smith@example.com", "name": "John Smith"}}),
        SessionEvent(session=session, kind="transferred", actor="smith@example.com",
                     summary="transferred to group 5 (manual)",
                     data={"reason": "manual", "to": {"group_ids": [5]}, "queue": {"position": 2, "wait_time": 30}},
                     raw=raw),
        SessionEvent(session=session, kind="error", summary="LiveChat said chat_inactive", data={"type": "chat_inactive"}),
    ])


def delivery(session: HitlSession, *, state: str = Delivery.State.DEAD, type: str = "agent.message",
             attempts: int = 2) -> Delivery:
    n = next(_counter)
    row = Delivery.objects.create(
        event_id=f"evt_{n:024d}", integration=session.integration, session=session, type=type,
        payload={"id": f"evt_{n:024d}", "type": type, "data": {"session_id": str(session.pk),
                                                                "message": {"text": "hello from agent"}}},
        state=state, attempts=attempts, last_status=500 if state == Delivery.State.DEAD else 200,
        last_response="upstream exploded" if state == Delivery.State.DEAD else "ok",
        last_error="HTTP 500" if state == Delivery.State.DEAD else "",
    )
    for number in range(1, attempts + 1):
        DeliveryAttempt.objects.create(delivery=row, number=number, status_code=row.last_status, duration_ms=12,
                                       response_body=row.last_response)
    return row


def full_session(integration: Integration, secrets: Secrets | None = None, **kwargs) -> HitlSession:
    """A session with a transcript, an audit timeline and one dead and one delivered callback."""
    row = session(integration, user=end_user(integration, secrets=secrets), **kwargs)
    transcript(row, secrets=secrets)
    audit_events(row, secrets=secrets)
    delivery(row, state=Delivery.State.DEAD)
    delivery(row, state=Delivery.State.DELIVERED, type="session.assigned", attempts=1)
    return row


@contextmanager
def _settable_created_at():
    """Let bulk_create write created_at (auto_now_add would stamp every row with now)."""
    field = HitlSession._meta.get_field("created_at")
    field.auto_now_add = False
    try:
        yield
    finally:
        field.auto_now_add = True


def bulk_sessions(integration: Integration, count: int, *, days: int = 30) -> None:
    """`count` sessions spread over `days`, some replied, some transferred, fast (bulk inserts)."""
    user = end_user(integration)
    now = timezone.now()
    rows = []
    for i in range(count):
        created = now - timedelta(days=i % days)
        status = ["closed", "assigned", "waiting", "failed"][i % 4]
        rows.append(HitlSession(
            id=uuid.uuid4(), integration=integration, end_user=user, conversation_id=f"bulk-{i}",
            chat_id=f"B{i:09d}", thread_id=f"T{i:07d}", status=status, created_at=created,
            agent_id="smith@example.com" if status in ("closed", "assigned") else "",
            agent_name="John Smith" if status in ("closed", "assigned") else "",
            first_agent_reply_at=created + timedelta(seconds=30 + i % 300) if i % 3 else None,
        ))
    with _settable_created_at():
        HitlSession.objects.bulk_create(rows, batch_size=2000)
    SessionEvent.objects.bulk_create(
        [SessionEvent(session=r, kind="transferred", summary="transferred") for j, r in enumerate(rows) if j % 5 == 0],
        batch_size=2000,
    )


def integration_form_data(integration, **changes):
    """The integration change form as a browser would post it, secrets left blank (kept)."""
    data = {
        "name": integration.name, "client_id": integration.client_id,
        "organization_id": integration.organization_id, "group_id": integration.group_id,
        "callback_url": integration.callback_url, "enabled": "on",
        "new_agent_token": "", "new_webhook_secret": "", "new_callback_secret": "",
    }
    data.update(changes)
    return data
