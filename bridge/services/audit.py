"""The audit trail: one SessionEvent per thing that happened to a session."""
from django.db import IntegrityError, transaction

from bridge.models import HitlSession, SessionEvent


def record_event(
    *,
    session: HitlSession,
    kind: str,
    actor: str = "",
    summary: str = "",
    data: dict | None = None,
    raw: dict | None = None,
    dedupe_key: str | None = None,
) -> SessionEvent | None:
    """Appends an audit entry; with a `dedupe_key` already recorded, returns None and changes nothing."""
    event = SessionEvent(
        session=session,
        kind=kind,
        actor=actor[:255],
        summary=summary[:500],
        data=data or {},
        raw=raw or {},
        dedupe_key=dedupe_key,
    )
    if dedupe_key is None:
        event.save()
        return event
    try:
        with transaction.atomic():
            event.save()
    except IntegrityError:
        return None
    return event
