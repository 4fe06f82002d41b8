"""Reads for the console. Every function takes querysets already scoped to the user's tenants
(dashboard.scoping) or tenant ids from them; none loops over all rows in Python.

The overview's numbers are aggregate queries whose count does not depend on the number of
sessions: GROUP BY for counts, percentile_cont (PostgreSQL) or ORDER BY … OFFSET (SQLite) for
the median.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Iterable, Iterator

from django.db import connection
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from bridge.models import Delivery, HitlSession, Message, SessionEvent, Tenant

from .charts import bar_chart
from .dbfunctions import Median, SecondsBetween, UtcDay

# ---------------------------------------------------------------------------------------------
# Redaction: raw payloads are shown to staff, but never anything credential-like inside them.

_SECRET_KEY_PARTS = ("secret", "token", "password", "authorization", "cookie", "api_key", "apikey")


def redact(value):
    """A copy of a JSON value with any credential-looking key's value replaced."""
    if isinstance(value, dict):
        return {
            key: "[redacted]" if any(part in str(key).lower() for part in _SECRET_KEY_PARTS) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def pretty_json(value) -> str:
    return json.dumps(redact(value), indent=2, sort_keys=True, ensure_ascii=False, default=str)


# ---------------------------------------------------------------------------------------------
# One session


@dataclass
class SessionDetail:
    session: HitlSession
    messages: list[Message]
    events: list[SessionEvent]
    deliveries: list[Delivery]

    @property
    def failed_deliveries(self) -> int:
        return sum(1 for d in self.deliveries if d.state == Delivery.State.DEAD or (d.attempts and not d.delivered_at))


def session_queryset(queryset: QuerySet) -> QuerySet:
    """What a session page needs in the same row: integration, tenant, end user."""
    return queryset.select_related("integration", "integration__tenant", "end_user")


def session_detail(*, session: HitlSession) -> SessionDetail:
    """The transcript, the audit timeline and the callbacks of one session: four queries."""
    messages = list(session.messages.order_by("id"))
    events = list(session.events.order_by("created_at", "id"))
    deliveries = list(session.deliveries.order_by("created_at", "id").prefetch_related("attempt_log"))
    return SessionDetail(session, messages, events, deliveries)


def _iso(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def session_summary(session: HitlSession) -> dict:
    return {
        "id": str(session.id),
        "tenant": session.integration.tenant.slug,
        "integration": session.integration.name,
        "conversation_id": session.conversation_id,
        "livechat_chat_id": session.chat_id,
        "livechat_thread_id": session.thread_id,
        "status": session.status,
        "user": {
            "external_id": session.end_user.external_id,
            "name": session.end_user.name,
            "email": session.end_user.email,
        },
        "agent": {"id": session.agent_id, "name": session.agent_name} if session.agent_id else None,
        "title": session.title,
        "created_at": _iso(session.created_at),
        "assigned_at": _iso(session.assigned_at),
        "first_agent_reply_at": _iso(session.first_agent_reply_at),
        "closed_at": _iso(session.closed_at),
        "closed_by": session.closed_by,
        "close_reason": session.close_reason,
        "transcript_purged_at": _iso(session.transcript_purged_at),
    }


def message_dict(message: Message) -> dict:
    return {
        "id": message.id,
        "created_at": _iso(message.created_at),
        "author": message.author,
        "direction": message.direction,
        "kind": message.kind,
        "text": message.text,
        "url": message.url,
        "internal": message.internal,
        "agent_id": message.agent_id,
        "livechat_event_id": message.livechat_event_id,
        "delivery_state": message.delivery_state,
        "last_error": message.last_error,
    }


def event_dict(event: SessionEvent) -> dict:
    return {
        "id": event.id,
        "created_at": _iso(event.created_at),
        "kind": event.kind,
        "actor": event.actor,
        "summary": event.summary,
        "data": redact(event.data),
    }


def transcript_document(*, detail: SessionDetail) -> dict:
    """One session as a JSON document: who, when, what was said, what happened."""
    return {
        "session": session_summary(detail.session),
        "messages": [message_dict(m) for m in detail.messages],
        "events": [event_dict(e) for e in detail.events],
    }


TRANSCRIPT_CSV_COLUMNS = [
    "message_id", "created_at", "author", "direction", "kind", "internal", "agent_id", "text", "url",
    "delivery_state", "last_error",
]


def transcript_csv_rows(*, detail: SessionDetail) -> Iterator[list]:
    for m in detail.messages:
        row = message_dict(m)
        yield [row["id"], row["created_at"], row["author"], row["direction"], row["kind"], row["internal"],
               row["agent_id"], row["text"], row["url"], row["delivery_state"], row["last_error"]]


def integration_audit_entries(*, integration, limit: int = 10) -> list:
    """The latest console audit entries about an integration and its API keys."""
    from .models import ConsoleAuditEntry

    key_ids = [str(pk) for pk in integration.api_keys.values_list("pk", flat=True)]
    return list(
        ConsoleAuditEntry.objects.filter(tenant_id=integration.tenant_id)
        .filter(Q(object_type="integration", object_id=str(integration.pk)) | Q(object_type="api key", object_id__in=key_ids))
        .order_by("-created_at", "-id")[:limit]
    )


# ---------------------------------------------------------------------------------------------
# Many sessions: the CSV export of a filtered list, streamed

SESSION_CSV_COLUMNS = [
    "session_id", "tenant", "integration", "conversation_id", "livechat_chat_id", "livechat_thread_id",
    "status", "user_external_id", "user_name", "user_email", "agent_id", "agent_name", "created_at",
    "assigned_at", "first_agent_reply_at", "closed_at", "closed_by", "close_reason", "messages",
    "transfers", "failed_callbacks", "transcript_purged_at",
]


def _count_of(model, **conditions) -> Coalesce:
    """A correlated count of the session's rows of `model` matching `conditions`.

    The conditions go into the aggregate (COUNT … FILTER/CASE), not the WHERE clause: then the
    only lookup is session_id, and SQLite uses the (session, …) index instead of an index on
    kind or state that it would otherwise pick and scan for every session.
    """
    return Coalesce(
        Subquery(
            model.objects.filter(session=OuterRef("pk"))
            .order_by()
            .values("session")
            .annotate(n=Count("pk", filter=Q(**conditions) if conditions else None))
            .values("n")[:1]
        ),
        Value(0),
    )


def session_export_rows(queryset: QuerySet, *, chunk_size: int = 2000) -> Iterator[list]:
    """Rows for SESSION_CSV_COLUMNS, read in chunks (server-side cursor on PostgreSQL)."""
    rows = queryset.annotate(
        n_messages=_count_of(Message),
        n_transfers=_count_of(SessionEvent, kind=SessionEvent.Kind.TRANSFERRED),
        n_failed=_count_of(Delivery, state=Delivery.State.DEAD),
    ).values_list(
        "id", "integration__tenant__slug", "integration__name", "conversation_id", "chat_id", "thread_id",
        "status", "end_user__external_id", "end_user__name", "end_user__email", "agent_id", "agent_name",
        "created_at", "assigned_at", "first_agent_reply_at", "closed_at", "closed_by", "close_reason",
        "n_messages", "n_transfers", "n_failed", "transcript_purged_at",
    )
    for row in rows.iterator(chunk_size=chunk_size):
        yield [_iso(v) if isinstance(v, datetime) else v for v in row]


# ---------------------------------------------------------------------------------------------
# The overview


@dataclass
class TenantOverview:
    tenant: Tenant
    days: list[tuple[date, int]] = field(default_factory=list)
    handoffs: int = 0
    open_sessions: int = 0
    median_first_reply: timedelta | None = None
    replied: int = 0
    transferred: int = 0
    dead_deliveries: int = 0
    retrying_deliveries: int = 0

    @property
    def transfer_rate(self) -> float | None:
        return self.transferred / self.handoffs if self.handoffs else None

    @property
    def chart(self):
        return bar_chart(self.days, width=1000, height=200)


def period(*, days: int, now: datetime | None = None) -> tuple[datetime, datetime, list[date]]:
    """The last `days` whole days up to today (UTC): start, end (exclusive) and each day."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    first = today - timedelta(days=days - 1)
    start = timezone.make_aware(datetime.combine(first, datetime.min.time()))
    end = timezone.make_aware(datetime.combine(today + timedelta(days=1), datetime.min.time()))
    return start, end, [first + timedelta(days=i) for i in range(days)]


def _median_first_reply(session_qs: QuerySet) -> dict[int, tuple[timedelta, int]]:
    """tenant id → (median of first_agent_reply_at - created_at, how many replied).

    PostgreSQL: one GROUP BY with percentile_cont. SQLite (no percentile function): one GROUP BY
    for the counts, then per tenant the middle one or two rows by ORDER BY … LIMIT 2 OFFSET —
    a fixed number of queries per tenant, whatever the number of sessions.
    """
    replied = session_qs.filter(first_agent_reply_at__isnull=False).order_by()
    wait = SecondsBetween(F("first_agent_reply_at"), F("created_at"))
    result: dict[int, tuple[timedelta, int]] = {}
    if connection.vendor == "postgresql":
        rows = (
            replied.values("integration__tenant_id")
            .annotate(median=Median(wait), n=Count("pk"))
            .values_list("integration__tenant_id", "median", "n")
        )
        for tenant_id, median, n in rows:
            result[tenant_id] = (_whole_seconds(median), n)
        return result
    counts = replied.values("integration__tenant_id").annotate(n=Count("pk")).values_list("integration__tenant_id", "n")
    for tenant_id, n in counts:
        middle = list(
            replied.filter(integration__tenant_id=tenant_id)
            .annotate(wait=wait)
            .order_by("wait")
            .values_list("wait", flat=True)[(n - 1) // 2 : n // 2 + 1]
        )
        result[tenant_id] = (_whole_seconds(sum(middle) / len(middle)), n)
    return result


def _whole_seconds(seconds: float) -> timedelta:
    # SQLite keeps milliseconds; nobody reads a median wait closer than a second.
    return timedelta(seconds=round(seconds))


def overview(*, tenants: Iterable[Tenant], days: int = 30, now: datetime | None = None) -> list[TenantOverview]:
    """Per tenant: handoffs per day, open sessions, median time to first agent reply, transfer
    rate and failed callbacks over the period. Five queries on PostgreSQL; on SQLite one more per
    tenant with replies (the median). None grows with the number of sessions."""
    tenants = list(tenants)
    result = {t.pk: TenantOverview(t) for t in tenants}
    if not tenants:
        return []
    ids = list(result)
    start, end, day_list = period(days=days, now=now)
    in_tenants = HitlSession.objects.filter(integration__tenant_id__in=ids)
    in_period = in_tenants.filter(created_at__gte=start, created_at__lt=end)

    per_day: dict[int, dict[date, int]] = defaultdict(dict)
    for tenant_id, day, n in (
        in_period.order_by()
        .annotate(day=UtcDay("created_at"))
        .values("integration__tenant_id", "day")
        .annotate(n=Count("pk"))
        .values_list("integration__tenant_id", "day", "n")
    ):
        per_day[tenant_id][date.fromisoformat(day)] = n

    for tenant_id, n in (
        in_tenants.filter(status__in=HitlSession.OPEN_STATUSES)
        .order_by()
        .values("integration__tenant_id")
        .annotate(n=Count("pk"))
        .values_list("integration__tenant_id", "n")
    ):
        result[tenant_id].open_sessions = n

    for tenant_id, (median, replied) in _median_first_reply(in_period).items():
        result[tenant_id].median_first_reply = median
        result[tenant_id].replied = replied

    for tenant_id, n in (
        SessionEvent.objects.filter(
            kind=SessionEvent.Kind.TRANSFERRED,
            session__integration__tenant_id__in=ids,
            session__created_at__gte=start,
            session__created_at__lt=end,
        )
        .order_by()
        .values("session__integration__tenant_id")
        .annotate(n=Count("session_id", distinct=True))
        .values_list("session__integration__tenant_id", "n")
    ):
        result[tenant_id].transferred = n

    for tenant_id, dead, retrying in (
        Delivery.objects.filter(integration__tenant_id__in=ids)
        .filter(
            Q(state=Delivery.State.DEAD, created_at__gte=start, created_at__lt=end)
            | Q(state__in=[Delivery.State.PENDING, Delivery.State.DELIVERING], attempts__gt=0)
        )
        .order_by()
        .values("integration__tenant_id")
        .annotate(
            dead=Count("pk", filter=Q(state=Delivery.State.DEAD)),
            retrying=Count("pk", filter=~Q(state=Delivery.State.DEAD)),
        )
        .values_list("integration__tenant_id", "dead", "retrying")
    ):
        result[tenant_id].dead_deliveries = dead
        result[tenant_id].retrying_deliveries = retrying

    for tenant_id, item in result.items():
        counts = per_day.get(tenant_id, {})
        item.days = [(day, counts.get(day, 0)) for day in day_list]
        item.handoffs = sum(n for _, n in item.days)
    return [result[t.pk] for t in tenants]
