"""The outbox of messages to LiveChat: queued bot-user messages sent in order, per session.

`queue_message` stores a message row `pending` (in the caller's transaction) and queues a send
after commit; `send_pending_messages` sends. Ordering and exclusivity come from the rows alone:

- the *head* of a session's outbox is its oldest `to_agent` message still `pending`/`sending`;
  only the head is ever sent, so a later message never overtakes an earlier unsent one;
- the head is claimed with a conditional UPDATE (`pending`, or `sending` whose lease ran out,
  and due) that sets `sending` and a lease: if 0 rows changed, another worker has it;
- a transient failure puts it back to `pending` with `next_attempt_at` from
  LIVECHAT_RETRY_SCHEDULE; the periodic `kick_due_messages` re-queues sessions whose head is due.

Exactly once in LiveChat, though a try can end without an answer (a timeout, a worker killed
mid-call) while LiveChat still stores the event: every event carries the message's `custom_id`,
and a retry first looks for it in the chat (`get_chat`) and, if it is there, records that event
instead of sending again. After a timeout the next try waits at least one more LiveChat timeout,
so a request LiveChat was still working on has landed by the time we look.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Min, Q, QuerySet, Subquery
from django.utils import timezone

from bridge import dispatch, metrics
from bridge.livechat import LiveChatAuthError, LiveChatError, LiveChatTransientError
from bridge.livechat.errors import safe_text
from bridge.models import HitlSession, Message, SessionEvent

from .audit import record_event
from .customers import customer_client
from .errors import Conflict
from .integration_cache import cached_integration
from .lifecycle import close_session
from .media import MediaError, fetch_media

log = logging.getLogger(__name__)

# A claimed row is ours this long; after it, a crashed worker's row is claimable again.
CLAIM_LEASE = timedelta(minutes=2)
# Errors from LiveChat that mean the chat is gone: the session is over.
CHAT_GONE_TYPES = frozenset({"chat_inactive", "not_found"})
KICK_BATCH = 500
UNSENT = (Message.Delivery.PENDING, Message.Delivery.SENDING)


def outbox(*, session_id) -> QuerySet[Message]:
    return Message.objects.filter(
        session_id=session_id, direction=Message.Direction.TO_AGENT, delivery_state__in=UNSENT
    ).order_by("id")


def enqueue_session(*, session_id) -> None:
    """Send the session's outbox after the current transaction commits."""
    from bridge.tasks import send_session_messages

    dispatch.enqueue(send_session_messages, str(session_id))


def send_pending_messages(*, session_id, limit: int = 100) -> int:
    """Sends the session's queued messages in order until the outbox is empty, the head is not
    due, another worker holds it, or a send must wait for a retry. Returns how many messages it
    finished (sent, or failed for good)."""
    session = HitlSession.objects.select_related("end_user").filter(pk=session_id).first()
    if session is None:
        return 0
    # The integration (its agent token, group) as this process last read it: no join, no
    # decrypting its secrets for every message.
    session.integration = cached_integration(session.integration_id) or session.integration
    if session.end_user.integration_id == session.integration_id:
        session.end_user.integration = session.integration
    sent = 0
    for _ in range(limit):
        if not session.is_open:
            _fail_unsent(session=session, reason=f"the session is {session.status}; the message was not sent")
            return sent
        if not session.chat_id:
            return sent  # still starting: start_session queues the outbox when the chat exists
        message = _claim_head(session_id=session.pk)
        if message is None:
            return sent
        if not _send_one(session=session, message=message):
            return sent
        sent += 1
        session.refresh_from_db(fields=["status", "chat_id", "thread_id"])
    enqueue_session(session_id=session.pk)  # more than `limit`: continue in a fresh task
    return sent


def kick_due_messages(*, limit: int = KICK_BATCH) -> int:
    """Queues a send for every session whose outbox head is due (retries, lost tasks, expired
    claims). Called periodically; returns how many sessions were queued."""
    now = timezone.now()
    heads = (
        Message.objects.filter(direction=Message.Direction.TO_AGENT, delivery_state__in=UNSENT)
        .values("session_id")
        .annotate(head_id=Min("id"))
        .values("head_id")
    )
    # Only the head decides: messages queued behind a head that waits for its retry are not due.
    session_ids = list(
        Message.objects.filter(pk__in=Subquery(heads))
        .filter(Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True))
        .order_by("next_attempt_at")
        .values_list("session_id", flat=True)[:limit]
    )
    for session_id in session_ids:
        enqueue_session(session_id=session_id)
    return len(session_ids)


def _claim_head(*, session_id) -> Message | None:
    # Written out (this runs for every message and once more to find the outbox empty): the ORM
    # spent more time building these two statements than PostgreSQL spent running them.
    table = connection.ops.quote_name(Message._meta.db_table)
    session_param = Message._meta.get_field("session").target_field.get_db_prep_value(session_id, connection)
    rows = list(Message.objects.raw(
        f"SELECT * FROM {table} WHERE session_id = %s AND direction = %s AND delivery_state IN (%s, %s) "
        "ORDER BY id LIMIT 1",
        [session_param, Message.Direction.TO_AGENT, *UNSENT],
    ))
    if not rows:
        return None
    head, now = rows[0], timezone.now()
    if head.next_attempt_at is not None and head.next_attempt_at > now:
        return None  # a retry that is not due yet, or another worker's live claim
    # `attempts` makes the claim a compare-and-swap: it matches only the version of the row read
    # above, so that row plus this UPDATE is what is stored, with no second read.
    stamp = Message._meta.get_field("next_attempt_at").get_db_prep_value
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET delivery_state = %s, next_attempt_at = %s, attempts = attempts + 1 "
            "WHERE id = %s AND attempts = %s AND delivery_state IN (%s, %s) "
            "AND (next_attempt_at IS NULL OR next_attempt_at <= %s)",
            [Message.Delivery.SENDING, stamp(now + CLAIM_LEASE, connection), head.pk, head.attempts, *UNSENT,
             stamp(now, connection)],
        )
        if cursor.rowcount != 1:
            return None
    metrics.observe_lag("message", head.next_attempt_at or head.created_at)
    head.delivery_state, head.next_attempt_at, head.attempts = Message.Delivery.SENDING, now + CLAIM_LEASE, head.attempts + 1
    return head


def _send_one(*, session: HitlSession, message: Message) -> bool:
    """One attempt at the claimed head. True when it was sent (go on with the next)."""
    timeout = None
    try:
        with customer_client(end_user=session.end_user) as client:
            timeout = client.config.timeout
            event_id = _deliver(client=client, session=session, message=message)
    except MediaError as error:
        if error.transient:
            _retry_later(session=session, message=message, error=error.message)
        else:
            _give_up(session=session, message=message, error=error.message)
            return True  # this one is final; the next message may go
        return False
    except LiveChatError as error:
        if error.type in CHAT_GONE_TYPES:
            _chat_gone(session=session, message=message, error=error)
            return False
        if isinstance(error, (LiveChatTransientError, LiveChatAuthError)):
            retry_after = getattr(error, "retry_after", None)
            if error.type == "timeout" and timeout:
                # LiveChat may still store the event we stopped waiting for: give it one more
                # timeout before the next try looks for it (see _deliver).
                retry_after = max(retry_after or 0.0, timeout)
            _retry_later(session=session, message=message, error=f"LiveChat {error}", retry_after=retry_after)
            return False
        _give_up(session=session, message=message, error=f"LiveChat refused the message: {error}")
        return True
    _mark_sent(message=message, event_id=event_id)
    return True


def custom_id(message: Message) -> str:
    """The id our LiveChat event carries, so a retry can tell whether an earlier try landed."""
    return f"hitl_{message.pk}"


def _deliver(*, client, session: HitlSession, message: Message) -> str:
    if message.attempts > 1:
        # An earlier try may have reached LiveChat without us hearing back (a timeout, a worker
        # killed mid-call): if the event is in the chat, this message is sent.
        event_id = _find_sent_event(client=client, session=session, message=message)
        if event_id:
            log.info("message %s: found in the chat as %s; not sent again", message.pk, event_id)
            return event_id
    if message.kind == Message.Kind.TEXT:
        event = {"type": "message", "text": message.text}
    else:
        file_url = message.payload.get("livechat_url")
        if not file_url:
            media = fetch_media(url=message.url)
            file_url = client.upload_file(
                filename=media.filename, content=media.content, content_type=media.content_type
            )
            # Keep the upload: a retry of a failed send_event does not upload again.
            payload = {**message.payload, "livechat_url": file_url, "filename": media.filename,
                       "content_type": media.content_type, "size": len(media.content)}
            Message.objects.filter(pk=message.pk).update(payload=payload)
            message.payload = payload
        event = {"type": "file", "url": file_url}
        if message.text:
            event["alternative_text"] = message.text
    event["custom_id"] = custom_id(message)
    return client.send_event(chat_id=session.chat_id, event=event)


def _find_sent_event(*, client, session: HitlSession, message: Message) -> str | None:
    """The id of the event carrying this message's custom_id in the chat's current thread, if any
    (send_event always writes to the current thread)."""
    wanted = custom_id(message)
    thread = client.get_chat(chat_id=session.chat_id).get("thread") or {}
    for event in thread.get("events") or []:
        if isinstance(event, dict) and event.get("custom_id") == wanted and event.get("id"):
            return str(event["id"])
    return None


def _mark_sent(*, message: Message, event_id: str) -> None:
    now = timezone.now()
    fields = dict(delivery_state=Message.Delivery.SENT, sent_at=now, next_attempt_at=None, last_error="")
    try:
        with transaction.atomic():
            Message.objects.filter(pk=message.pk).update(livechat_event_id=event_id, **fields)
    except IntegrityError:
        # The event id is already on a row of this session (a webhook stored our own event):
        # the message is sent all the same.
        log.warning("message %s: LiveChat event %s is already stored", message.pk, event_id)
        Message.objects.filter(pk=message.pk).update(**fields)
    metrics.delivery_attempt("message", "delivered")


def _retry_later(*, session: HitlSession, message: Message, error: str, retry_after: float | None = None) -> None:
    schedule = settings.LIVECHAT_RETRY_SCHEDULE
    retry = message.attempts - 1  # attempts was counted by the claim
    if retry >= len(schedule):
        _give_up(session=session, message=message, error=f"{error} (gave up after {message.attempts} attempts)")
        return
    delay = max(float(schedule[retry]), retry_after or 0.0)
    Message.objects.filter(pk=message.pk, delivery_state=Message.Delivery.SENDING).update(
        delivery_state=Message.Delivery.PENDING,
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
        last_error=safe_text(error, 500),
    )
    log.info("message %s: attempt %d failed (%s); retry in %.0f s", message.pk, message.attempts, error, delay)
    metrics.delivery_attempt("message", "retry")


def _give_up(*, session: HitlSession, message: Message, error: str) -> None:
    error = safe_text(error, 500)
    with transaction.atomic():
        Message.objects.filter(pk=message.pk).update(
            delivery_state=Message.Delivery.FAILED, next_attempt_at=None, last_error=error
        )
        record_event(
            session=session,
            kind=SessionEvent.Kind.ERROR,
            actor="console",
            summary=f"message {message.pk} not delivered: {error}",
            data={"message_id": message.pk, "attempts": message.attempts, "error": error},
        )
    log.warning("message %s: failed for good: %s", message.pk, error)
    metrics.delivery_attempt("message", "dead")


def _chat_gone(*, session: HitlSession, message: Message, error: LiveChatError) -> None:
    reason = f"the LiveChat chat is no longer active ({error.type})"
    with transaction.atomic():
        close_session(session=session, closed_by="livechat", reason=reason, raw={"error": str(error)})
        _fail_unsent(session=session, reason=f"{reason}; the message was not sent")
    metrics.delivery_attempt("message", "dead")


def _fail_unsent(*, session: HitlSession, reason: str) -> None:
    """Marks what is still queued for a session that is over as failed (nothing can send it)."""
    Message.objects.filter(
        session_id=session.pk, direction=Message.Direction.TO_AGENT, delivery_state__in=UNSENT
    ).update(delivery_state=Message.Delivery.FAILED, next_attempt_at=None, last_error=reason[:500])


def queue_message(
    *, session: HitlSession, kind: str, text: str = "", url: str = "", external_id: str | None = None
) -> tuple[Message, bool]:
    """Stores a user message for the agent and queues its send. Returns (message, created).

    The same `external_id` again returns the first message unchanged (also once the session has
    closed, so a bot's retry stays harmless). A new message to a closed session is a Conflict.
    """
    if not session.is_open:
        existing = Message.objects.filter(session=session, external_id=external_id).first() if external_id else None
        if existing is not None:
            return existing, False
        raise Conflict(
            f"the session is {session.status}; start a new session to reach an agent",
            details={"session_id": str(session.pk), "status": session.status},
        )
    try:
        with transaction.atomic():
            message = Message.objects.create(
                session=session,
                direction=Message.Direction.TO_AGENT,
                author=Message.Author.USER,
                kind=kind,
                text=text,
                url=url,
                external_id=external_id or None,
                delivery_state=Message.Delivery.PENDING,
                next_attempt_at=timezone.now(),
            )
            enqueue_session(session_id=session.pk)
    except IntegrityError:  # this external_id again (a bot's retry): the unique constraint says so
        existing = Message.objects.filter(session=session, external_id=external_id).first() if external_id else None
        if existing is None:
            raise
        return existing, False
    return message, True
