"""State changes of a session that several workflows share (API stop, LiveChat webhooks)."""
from django.utils import timezone

from bridge.models import HitlSession, SessionEvent

from .audit import record_event
from .callbacks import queue_callback


def close_session(*, session: HitlSession, closed_by: str, reason: str = "", raw: dict | None = None) -> bool:
    """Closes an open session once: audit entry and `session.closed` callback.

    Returns False (and changes nothing) when it was already closed or failed, so a repeated
    stop or a redelivered `chat_deactivated` is harmless. Call inside a transaction.
    """
    now = timezone.now()
    changed = HitlSession.objects.filter(pk=session.pk, status__in=HitlSession.OPEN_STATUSES).update(
        status=HitlSession.Status.CLOSED, closed_at=now, closed_by=closed_by[:255], close_reason=reason[:500]
    )
    if not changed:
        session.refresh_from_db()
        return False
    session.status, session.closed_at = HitlSession.Status.CLOSED, now
    session.closed_by, session.close_reason = closed_by[:255], reason[:500]
    record_event(
        session=session,
        kind=SessionEvent.Kind.CLOSED,
        actor=closed_by,
        summary=f"closed by {closed_by}" + (f": {reason}" if reason else ""),
        data={"closed_by": closed_by, "reason": reason},
        raw=raw,
    )
    queue_callback(session=session, type="session.closed", data={"closed_by": closed_by, "reason": reason})
    return True
