"""Transcript retention: a tenant may keep transcripts for a number of days, then they go.

What goes: the session's Message rows, and the message text the outbox kept in delivered
`agent.message` callbacks. What stays: the session itself (who, when, status, agent) and its
audit events, so counts and timelines are unchanged; `transcript_purged_at` says when it went.
Open sessions are never purged, however old.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from bridge.models import Delivery, HitlSession, Message, Tenant

BATCH_SIZE = 500


def expired_sessions(*, tenant_id: int, retention_days: int, now: datetime):
    """Ended sessions of the tenant whose end (or start, when it has none) is past retention."""
    cutoff = now - timedelta(days=retention_days)
    return (
        HitlSession.objects.filter(integration__tenant_id=tenant_id, transcript_purged_at__isnull=True)
        .exclude(status__in=HitlSession.OPEN_STATUSES)
        .annotate(ended_at=Coalesce(F("closed_at"), F("created_at")))
        .filter(ended_at__lt=cutoff)
    )


def _scrub_delivered_messages(*, session_ids: list) -> None:
    """Blank the text and URL of agent messages kept in finished callbacks (the envelope stays,
    so a redelivery is still a well-formed event)."""
    deliveries = list(
        Delivery.objects.filter(session_id__in=session_ids, type="agent.message")
        .exclude(state__in=[Delivery.State.PENDING, Delivery.State.DELIVERING])
        .only("pk", "payload")
    )
    for delivery in deliveries:
        message = (delivery.payload.get("data") or {}).get("message") if isinstance(delivery.payload, dict) else None
        if isinstance(message, dict):
            message.update({"text": "", "url": "", "purged": True})
    Delivery.objects.bulk_update(deliveries, ["payload"], batch_size=200)


def purge_expired_transcripts(*, now: datetime | None = None, batch_size: int = BATCH_SIZE) -> int:
    """Purges what every tenant's retention says has expired; returns how many sessions.

    Works in batches, each its own transaction, so a large first run neither holds locks for
    long nor loses its progress when interrupted.
    """
    now = now or timezone.now()
    purged = 0
    tenants = Tenant.objects.filter(transcript_retention_days__isnull=False).values_list(
        "id", "transcript_retention_days"
    )
    for tenant_id, days in tenants:
        while True:
            ids = list(
                expired_sessions(tenant_id=tenant_id, retention_days=days, now=now).values_list("pk", flat=True)[
                    :batch_size
                ]
            )
            if not ids:
                break
            with transaction.atomic():
                Message.objects.filter(session_id__in=ids).delete()
                _scrub_delivered_messages(session_ids=ids)
                HitlSession.objects.filter(pk__in=ids).update(transcript_purged_at=now)
            purged += len(ids)
    return purged
