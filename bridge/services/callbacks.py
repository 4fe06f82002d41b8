"""Bot callbacks: an outbox of signed, retried, per-session ordered deliveries."""
import secrets

from django.utils import timezone

from bridge import dispatch
from bridge.models import Delivery, HitlSession


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(12)


def queue_callback(*, session: HitlSession, type: str, data: dict) -> Delivery | None:
    """Writes a callback into the outbox (in the caller's transaction) and sends it after commit.

    Returns None when the integration has no callback URL (the bot polls instead).
    """
    integration = session.integration
    if not integration.callback_url:
        return None
    event_id = new_event_id()
    now = timezone.now()
    payload = {
        "id": event_id,
        "type": type,
        "created_at": now.isoformat().replace("+00:00", "Z"),
        "data": {
            "session_id": str(session.id),
            "conversation_id": session.conversation_id,
            "user_external_id": session.end_user.external_id,
            **data,
        },
    }
    delivery = Delivery.objects.create(
        event_id=event_id,
        integration=integration,
        session=session,
        type=type,
        payload=payload,
        next_attempt_at=now,
    )
    from bridge.tasks import deliver_session_callbacks

    dispatch.enqueue(deliver_session_callbacks, str(session.id))
    return delivery
