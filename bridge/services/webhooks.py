"""LiveChat webhooks → the session's life: transcript, state, audit trail and bot callbacks.

Two steps, so LiveChat gets its answer fast and nothing it was told "200" about is lost:
- `accept_webhook` (in the request): one INSERT of a `WebhookReceipt` holding the envelope (minus
  its secret), then a task is queued. A redelivery finds its receipt and is answered `duplicate`.
- `process_pending_webhooks` (a worker): applies a chat's pending receipts one by one in the
  order they arrived, each in one transaction with the rows it causes and the bot callbacks
  (`Delivery` rows), then sends those callbacks itself: no second task between an agent's reply
  and the bot. A receipt whose task was lost (broker down, worker killed) is picked up by the
  periodic sweep (`kick_pending_webhooks`).

Exactly once, as far as the bot can see:
- A redelivered webhook (LiveChat retries up to 3 times) finds its receipt and changes nothing.
  The key is the event id for `incoming_event`, else a hash of action + payload.
- Different webhooks that describe a change already made change nothing either: the same agent
  joining twice, the same transfer reported twice, a close of a closed thread (state-change
  dedupe, decided under a lock on the session row), and an event id already in the transcript.

Whose chat: sessions are found by integration + chat id + thread id (a thread-less
`chat_transferred` or `chat_access_updated` goes to the chat's open session). Chats the console did
not start are logged and change nothing, except while a session of the integration is still
starting: its chat id is not stored yet, so the receipt waits (the sweep retries it) for up to
`START_WINDOW` instead of being dropped.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from bridge import dispatch, metrics, shared_cache
from bridge.logging import bind_session
from bridge.models import HitlSession, Integration, Message, SessionEvent, WebhookReceipt

from .audit import record_event
from .callbacks import queue_callback, send_callbacks_at_the_end
from .integration_cache import cached_integration
from .lifecycle import close_session

log = logging.getLogger(__name__)

ACCEPTED, PROCESSED, DUPLICATE, IGNORED, FAILED = "accepted", "processed", "duplicate", "ignored", "failed"
WAIT = "wait"  # not a result: the receipt stays pending and is tried again

# LiveChat retries a webhook up to 3 times within about a minute. A payload-hash receipt only
# means "a retry" within this window; the same bytes later are a new occurrence (an agent who
# left and re-joins), and the state-change checks decide what it changes.
RETRY_WINDOW = timedelta(minutes=10)
# POST /sessions commits a `pending` session before it calls start_chat, and LiveChat sends
# incoming_chat (maybe user_added_to_chat) before the chat id is stored. While such a start is
# in flight, a webhook for an unknown chat waits, for at most this long, instead of being dropped.
START_WINDOW = timedelta(seconds=30)
# The sweep leaves a receipt this long to the task queued with it.
SWEEP_GRACE = timedelta(seconds=2)
SWEEP_BATCH = 500
# A receipt whose processing raised this many times is set aside (outcome `failed`, logged) so
# that one poisonous webhook cannot hold up its chat's later ones forever.
MAX_FAILURES = 5

# LiveChat ids (WIRE.md): customers are UUIDs, agents e-mail addresses, bots 32 hex digits.
_CUSTOMER_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_FILE_FIELDS = ("name", "content_type", "size", "width", "height", "thumbnail_url", "alternative_text")


@dataclass(frozen=True)
class Outcome:
    """What became of a webhook: processed, duplicate or ignored, and why (for the log)."""

    result: str
    reason: str = ""


# ---- authentication ------------------------------------------------------------------------


def get_webhook_integration(*, integration_id) -> Integration | None:
    """The enabled integration a webhook URL names, or None (answered 404)."""
    integration = cached_integration(integration_id)
    return integration if integration is not None and integration.enabled else None


def secret_matches(*, integration: Integration, given: object) -> bool:
    """Constant-time comparison of the envelope's `secret_key` with the integration's secret.

    An integration without a secret accepts nothing: an empty secret must not match an empty key.
    """
    expected = integration.webhook_secret or ""
    if not isinstance(given, str) or not given or not expected:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


# ---- step 1, in the request: store and answer ----------------------------------------------


def accept_webhook(*, integration: Integration, action: str, payload: dict, raw: dict) -> str:
    """Stores an authenticated, validated webhook for a worker and queues it. `raw` (no secret in
    it) is what the worker applies and the audit trail keeps.

    Returns ACCEPTED, DUPLICATE (this webhook was received before: nothing stored) or IGNORED (an
    action we do not handle: nothing stored). All are answered 200.
    """
    handler = _HANDLERS.get(action)
    if handler is None:
        log.info("livechat webhook %s for integration %s ignored: not an action we handle", action, integration.pk)
        return IGNORED
    organization_id = raw.get("organization_id")
    if organization_id and integration.organization_id and organization_id != integration.organization_id:
        # The secret matched, so it is ours; a mismatch points at a misconfigured integration.
        log.warning("livechat webhook for integration %s names organization %s, configured is %s",
                    integration.pk, organization_id, integration.organization_id)
    chat_id, _ = handler.locate(payload)
    key = _dedupe_key(action, payload)
    if not _store_receipt(integration=integration, key=key, action=action, chat_id=chat_id, raw=raw):
        log.info("livechat webhook %s chat=%s: duplicate (received before)", action, chat_id)
        return DUPLICATE
    _queue_chat(integration.pk, chat_id)
    return ACCEPTED


# A chat that already has a task queued, not yet started, needs no second one: that task will
# see this receipt. The flag (in the cache, shared by all processes with Redis) is set by the
# webhook that queues a task and cleared by the task before it looks for receipts, so a receipt
# committed after the clearing queues a new task. It expires, in case its task is lost (the
# sweep covers that receipt meanwhile). Without a cache that answers, every webhook queues one.
QUEUED_FLAG_SECONDS = 30


def _queued_flag(integration_id, chat_id: str) -> str:
    return f"hitl:webhooks-queued:{integration_id}:{hashlib.sha256(chat_id.encode()).hexdigest()[:32]}"


def _queue_chat(integration_id, chat_id: str) -> None:
    from bridge.tasks import process_webhooks

    try:
        needed = shared_cache.set_flag(_queued_flag(integration_id, chat_id), QUEUED_FLAG_SECONDS)
    except Exception:
        log.warning("cache unavailable; queuing a task for this webhook anyway", exc_info=True)
        needed = True
    if needed:
        dispatch.enqueue(process_webhooks, str(integration_id), chat_id)


def _dedupe_key(action: str, payload: dict) -> str:
    event_id = (payload.get("event") or {}).get("id") if action == "incoming_event" else None
    if event_id and len(event_id) <= 100:
        return f"event:{event_id}"
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"{action[:40]}:" + hashlib.sha256(f"{action}\n{canonical}".encode()).hexdigest()


def _store_receipt(*, integration: Integration, key: str, action: str, chat_id: str, raw: dict) -> bool:
    """True when this webhook was not received before (stored for processing), False for a redelivery."""
    if _insert_receipt(integration=integration, key=key, action=action, chat_id=chat_id, raw=raw):
        return True
    if key.startswith("event:"):
        return False  # an event id is never reused
    # A payload-hash receipt older than any retry: a new occurrence. It replaces the old receipt
    # (and so queues behind the chat's newer ones); of two concurrent copies, one inserts.
    WebhookReceipt.objects.filter(
        integration=integration, dedupe_key=key, processed_at__isnull=False,
        received_at__lt=timezone.now() - RETRY_WINDOW,
    ).delete()
    return _insert_receipt(integration=integration, key=key, action=action, chat_id=chat_id, raw=raw)


_RECEIPT_COLUMNS = ("integration", "dedupe_key", "action", "chat_id", "envelope", "received_at", "outcome", "failures")


def _insert_receipt(*, integration: Integration, key: str, action: str, chat_id: str, raw: dict) -> bool:
    """INSERT … ON CONFLICT DO NOTHING (PostgreSQL and SQLite): the whole of a webhook's work in
    the request, one statement. True when the row was inserted."""
    fields = {f.name: f for f in WebhookReceipt._meta.concrete_fields}
    values = dict(integration=integration.pk, dedupe_key=key, action=action, chat_id=chat_id, envelope=raw,
                  received_at=timezone.now(), outcome="", failures=0)
    columns = ", ".join(connection.ops.quote_name(fields[name].column) for name in _RECEIPT_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {connection.ops.quote_name(WebhookReceipt._meta.db_table)} ({columns}) "
            f"VALUES ({', '.join(['%s'] * len(_RECEIPT_COLUMNS))}) ON CONFLICT DO NOTHING",
            [fields[name].get_db_prep_save(values[name], connection) for name in _RECEIPT_COLUMNS],
        )
        return cursor.rowcount == 1


# ---- step 2, in a worker: apply, in order --------------------------------------------------


def process_pending_webhooks(*, integration_id, chat_id: str) -> int:
    """Applies the chat's pending receipts oldest first, each followed by the bot callbacks it
    caused; returns how many were applied.

    Each receipt is taken under a row lock, without waiting: when the chat's oldest receipt is
    locked, another worker is applying it and goes on to the chat's later ones itself (it looks
    again after each commit), so this one stops instead of holding a worker idle. Stops early at
    a receipt that must wait (an unknown chat while a session is starting) or that raised: the
    sweep comes back to it.
    """
    integration = cached_integration(integration_id)
    if integration is None:
        return 0  # deleted, and its receipts with it
    try:
        shared_cache.clear_flag(_queued_flag(integration_id, chat_id))  # before looking: see _queue_chat
    except Exception:
        log.warning("cache unavailable; the webhooks of this chat will queue a task each", exc_info=True)
    applied = 0
    while True:
        receipt = None
        # Each webhook's callbacks go out as soon as it is committed, not after the chat's backlog.
        with send_callbacks_at_the_end():
            try:
                with transaction.atomic():
                    receipt = _lock_next_receipt(integration=integration, chat_id=chat_id)
                    if receipt is None:
                        return applied
                    outcome = _apply(integration=integration, receipt=receipt)
                    if outcome.result == WAIT:
                        return applied
                    _mark_applied(receipt, outcome.result)
            except OperationalError as exc:
                if receipt is None and getattr(exc.__cause__, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
                    return applied
                _count_failure(receipt)
                raise
            except Exception:
                _count_failure(receipt)
                raise
        metrics.webhook_processed(receipt.action, outcome.result)
        applied += 1


_LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL: FOR UPDATE NOWAIT found the row locked

# The two statements every accepted webhook costs its worker, written out: the ORM spent more
# time building them than PostgreSQL spent running them.
_RECEIPTS = WebhookReceipt._meta.db_table


def _lock_next_receipt(*, integration: Integration, chat_id: str) -> WebhookReceipt | None:
    """The chat's oldest pending receipt, locked (NOWAIT) for the caller's transaction, or None."""
    lock = " FOR UPDATE NOWAIT" if connection.features.has_select_for_update_nowait else ""
    rows = list(WebhookReceipt.objects.raw(
        f"SELECT * FROM {connection.ops.quote_name(_RECEIPTS)} WHERE integration_id = %s AND chat_id = %s "
        f"AND processed_at IS NULL ORDER BY id LIMIT 1{lock}",
        [WebhookReceipt._meta.get_field("integration").get_db_prep_value(integration.pk, connection), chat_id],
    ))
    return rows[0] if rows else None


def _mark_applied(receipt: WebhookReceipt, outcome: str) -> None:
    """Applied: what became of it is kept, the envelope (now in the audit trail) is not."""
    now = WebhookReceipt._meta.get_field("processed_at").get_db_prep_value(timezone.now(), connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {connection.ops.quote_name(_RECEIPTS)} SET processed_at = %s, outcome = %s, envelope = NULL "
            "WHERE id = %s",
            [now, outcome, receipt.pk],
        )


def _count_failure(receipt: WebhookReceipt | None) -> None:
    if receipt is None:
        return
    failures = receipt.failures + 1
    done = failures >= MAX_FAILURES
    WebhookReceipt.objects.filter(pk=receipt.pk).update(
        failures=failures, **({"processed_at": timezone.now(), "outcome": FAILED} if done else {})
    )
    if done:
        log.error("livechat webhook %s (receipt %s) failed %s times; set aside", receipt.action, receipt.pk, failures)
        metrics.webhook_processed(receipt.action, FAILED)


def kick_pending_webhooks() -> int:
    """The periodic sweep: hands every chat with a receipt pending for a while to a worker (its
    task was lost, it is waiting for a session start, or it failed). Returns how many chats."""
    from bridge.tasks import process_webhooks

    chats = (
        WebhookReceipt.objects.filter(processed_at__isnull=True, received_at__lt=timezone.now() - SWEEP_GRACE)
        .values_list("integration_id", "chat_id")
        .distinct()[:SWEEP_BATCH]
    )
    chats = list(chats)
    for integration_id, chat_id in chats:
        dispatch.enqueue(process_webhooks, str(integration_id), chat_id)
    return len(chats)


def _apply(*, integration: Integration, receipt: WebhookReceipt) -> Outcome:
    """One receipt's effect, in the caller's transaction. The session row is locked for it."""
    raw = receipt.envelope or {}
    action, payload = receipt.action, raw.get("payload") or {}
    handler = _HANDLERS.get(action)
    if handler is None:  # an action handled when it was accepted, no longer: nothing to do
        return _ignored(integration, action, receipt.chat_id, f"action {action!r} is not one we handle")
    chat_id, thread_id = handler.locate(payload)
    session = _lock_session(integration=integration, chat_id=chat_id, thread_id=thread_id)
    if session is None:
        if receipt.received_at >= timezone.now() - START_WINDOW and _start_in_flight(integration=integration):
            log.info("livechat webhook %s chat=%s: unknown chat while a session is starting; waiting",
                     action, chat_id)
            return Outcome(WAIT)
        return _ignored(integration, action, chat_id, "no session of the console has this chat/thread")
    session.integration = integration  # the one the URL named: no join, no decrypting again
    with bind_session(session.pk):
        outcome = handler.apply(session=session, payload=payload, raw=raw)
        log.info(
            "livechat webhook %s chat=%s session=%s: %s%s",
            action, chat_id, session.pk, outcome.result, f" ({outcome.reason})" if outcome.reason else "",
        )
    return outcome


def _lock_session(*, integration: Integration, chat_id: str, thread_id: str | None) -> HitlSession | None:
    """The session that owns the chat (and thread), read under a lock that serializes the
    state-change decisions for it (webhooks applied by two workers, the API's stop); or None.

    Only the session row is locked (`of`): a plain FOR UPDATE of this join would also lock the end
    user. NO KEY UPDATE still lets other transactions insert rows that point at the session
    (messages from the API) meanwhile. The usual case (chat and thread known) is one statement.
    """
    locked = (
        HitlSession.objects.select_for_update(of=("self",), no_key=True)
        .select_related("end_user")
        .defer("end_user__customer_token", "end_user__customer_cookies")  # not needed: not decrypted
    )
    if thread_id:
        session = (
            locked.filter(integration=integration, chat_id=chat_id, thread_id=thread_id).order_by("-created_at").first()
        )
        if session is not None:
            return session
    session_id = _find_session_id(integration=integration, chat_id=chat_id, thread_id=thread_id)
    return locked.get(pk=session_id) if session_id is not None else None


def _ignored(integration: Integration, action: str, chat_id: str, reason: str) -> Outcome:
    log.info("livechat webhook %s chat=%s integration=%s ignored: %s", action, chat_id or "-", integration.pk, reason)
    return Outcome(IGNORED, reason)


def _find_session_id(*, integration: Integration, chat_id: str, thread_id: str | None):
    """The id of the session that owns the chat (and thread), or None. Only the id: the row
    itself is read under its lock."""
    sessions = (
        HitlSession.objects.filter(integration=integration, chat_id=chat_id)
        .order_by("-created_at")
        .values_list("pk", flat=True)
    )
    if thread_id:
        session_id = sessions.filter(thread_id=thread_id).first()
        if session_id is not None:
            return session_id
        # An open session whose thread id we never learned still owns the chat's current thread.
        return sessions.filter(thread_id="", status__in=HitlSession.OPEN_STATUSES).first()
    return sessions.filter(status__in=HitlSession.OPEN_STATUSES).first()


def _start_in_flight(*, integration: Integration) -> bool:
    return HitlSession.objects.filter(
        integration=integration, status=HitlSession.Status.PENDING, chat_id="",
        created_at__gte=timezone.now() - START_WINDOW,
    ).exists()


def purge_webhook_receipts(*, older_than: timedelta = timedelta(days=2)) -> int:
    """Deletes applied receipts past any redelivery (for the periodic retention work); returns
    how many. Pending ones stay until a worker has applied them.

    Safe: a very late copy of an event still finds its Message (unique event id per session) or
    its audit entry (dedupe key), and state changes are checked against the session itself.
    """
    deleted, _ = WebhookReceipt.objects.filter(
        received_at__lt=timezone.now() - older_than, processed_at__isnull=False
    ).delete()
    return deleted


# ---- incoming_event ------------------------------------------------------------------------


def _incoming_event(*, session: HitlSession, payload: dict, raw: dict) -> Outcome:
    event = payload["event"]
    event_id, event_type = event["id"], event["type"]
    author_id = event.get("author_id") or ""
    text = event.get("text") or ""

    if event_type == "system_message":
        created = record_event(
            session=session, kind=SessionEvent.Kind.SYSTEM_MESSAGE, actor="livechat", summary=text,
            data={"event_id": event_id, "system_message_type": event.get("system_message_type") or "", "text": text},
            raw=raw, dedupe_key=f"event:{event_id}",
        )
        return Outcome(PROCESSED if created else DUPLICATE, "system message: audit trail only")
    if not author_id or _is_customer(session, author_id):
        # Our own customer's events (what the bot sent) come back as webhooks: never echo them.
        return Outcome(IGNORED, "not written by an agent")
    if event.get("visibility") == "agents":
        # An internal note is for agents only: it is kept in the audit trail and never becomes a
        # Message, so no transcript read or callback can ever hand it to the bot.
        created = record_event(
            session=session, kind=SessionEvent.Kind.NOTE, actor=author_id, summary=text,
            data={"event_id": event_id, "type": event_type, "text": text}, raw=raw, dedupe_key=f"event:{event_id}",
        )
        return Outcome(PROCESSED if created else DUPLICATE, "internal note: audit trail only")
    render = _RENDERERS.get(event_type)
    if render is None:
        return Outcome(IGNORED, f"{event_type} events are not forwarded")

    kind, text, url, details = render(event)
    agent = {"id": author_id, "name": _agent_name(session, author_id)}
    try:
        with transaction.atomic():
            message = Message.objects.create(
                session=session,
                direction=Message.Direction.TO_BOT,
                author=Message.Author.AGENT,
                kind=kind,
                text=text,
                url=url,
                # The polling API shows the agent's name from here, as the callback does.
                payload={**details, "agent_name": agent["name"]},
                agent_id=author_id,
                livechat_event_id=event_id,
                delivery_state=Message.Delivery.RECEIVED,
            )
    except IntegrityError:
        return Outcome(DUPLICATE, f"event {event_id} is already in the transcript")

    now = timezone.now()
    # The session was read under its lock: only its first agent reply needs the write.
    if session.first_agent_reply_at is None and HitlSession.objects.filter(
        pk=session.pk, first_agent_reply_at__isnull=True
    ).update(first_agent_reply_at=now):
        session.first_agent_reply_at = now
    body = {
        "id": message.pk,
        "type": kind,
        "text": text,
        "url": url,
        "agent": agent,
        "created_at": event.get("created_at") or now.isoformat().replace("+00:00", "Z"),
        "livechat_event_id": event_id,
    }
    if event_type == "file":
        body["file"] = details
    elif event_type == "rich_message":
        body["rich"] = details
    queue_callback(session=session, type="agent.message", data={"message": body})
    return Outcome(PROCESSED, f"agent {kind} message {message.pk}")


def _is_customer(session: HitlSession, author_id: str) -> bool:
    customer_id = session.end_user.livechat_customer_id
    return bool(customer_id and author_id == customer_id) or bool(_CUSTOMER_ID.match(author_id))


def _agent_name(session: HitlSession, agent_id: str) -> str:
    """The agent's display name from what LiveChat told us when they joined (messages carry ids only)."""
    if agent_id == session.agent_id and session.agent_name:
        return session.agent_name
    data = (
        session.events.filter(kind=SessionEvent.Kind.ASSIGNED, actor=agent_id)
        .order_by("-id")
        .values_list("data", flat=True)
        .first()
    )
    return ((data or {}).get("agent") or {}).get("name") or ""


def _render_message(event: dict) -> tuple[str, str, str, dict]:
    return Message.Kind.TEXT, event.get("text") or "", "", {}


def _render_file(event: dict) -> tuple[str, str, str, dict]:
    details = {name: event[name] for name in _FILE_FIELDS if event.get(name) is not None}
    content_type = event.get("content_type") or ""
    kind = Message.Kind.IMAGE if content_type.startswith("image/") else Message.Kind.FILE
    # The name is the file's text rendering, for transcripts and text-only bots.
    text = event.get("name") or event.get("alternative_text") or ""
    return kind, text, event.get("url") or "", details


def _render_rich(event: dict) -> tuple[str, str, str, dict]:
    """A rich message as text (titles, subtitles, button labels) plus its structured elements."""
    elements = event.get("elements") or []
    blocks = []
    for element in elements:
        lines = [str(element.get(name)) for name in ("title", "subtitle") if element.get(name)]
        buttons = [str(b.get("text")) for b in element.get("buttons") or [] if isinstance(b, dict) and b.get("text")]
        if buttons:
            lines.append(" | ".join(f"[{label}]" for label in buttons))
        if lines:
            blocks.append("\n".join(lines))
    details = {"template_id": event.get("template_id") or "", "elements": elements}
    return Message.Kind.RICH, "\n\n".join(blocks), "", details


_RENDERERS: dict[str, Callable[[dict], tuple[str, str, str, dict]]] = {
    "message": _render_message,
    "file": _render_file,
    "rich_message": _render_rich,
}


# ---- agents joining and transfers ----------------------------------------------------------


def _user_added_to_chat(*, session: HitlSession, payload: dict, raw: dict) -> Outcome:
    user = payload["user"]
    user_type = payload.get("user_type") or user.get("type")
    if user_type != "agent":
        return Outcome(IGNORED, f"a {user_type or 'non-agent'} user joined")
    if user.get("visibility") == "agents":
        return Outcome(IGNORED, "an agent joined as a supervisor (invisible to the customer)")
    return _assign(session=session, user=user, raw=raw,
                   reason=payload.get("reason") or "", requester_id=payload.get("requester_id") or "")


def _assign(*, session: HitlSession, user: dict, raw: dict, reason: str, requester_id: str) -> Outcome:
    agent_id = user["id"]
    if not session.is_open:
        return Outcome(IGNORED, f"session is {session.status}")
    if session.status == HitlSession.Status.ASSIGNED and session.agent_id == agent_id:
        return Outcome(DUPLICATE, f"{agent_id} is already the assigned agent")
    agent = {"id": agent_id, "name": (user.get("name") or "")[:255], "avatar": _avatar_url(user.get("avatar"))}
    previous = {"id": session.agent_id, "name": session.agent_name} if session.agent_id else None
    now = timezone.now()
    session.status = HitlSession.Status.ASSIGNED
    session.agent_id, session.agent_name, session.agent_avatar = agent["id"], agent["name"], agent["avatar"]
    session.assigned_at = session.assigned_at or now  # the first assignment: time to an agent
    session.save(update_fields=["status", "agent_id", "agent_name", "agent_avatar", "assigned_at"])
    record_event(
        session=session, kind=SessionEvent.Kind.ASSIGNED, actor=agent_id,
        summary=f"assigned to {agent['name'] or agent_id}",
        data={"agent": agent, "previous_agent": previous, "reason": reason, "requester_id": requester_id},
        raw=raw,
    )
    queue_callback(session=session, type="session.assigned", data={"agent": agent})
    return Outcome(PROCESSED, f"assigned to {agent_id}")


def _avatar_url(value: str | None) -> str:
    """LiveChat sometimes gives avatars scheme-relative (`//cdn…`) or bare (`cdn…/a.png`)."""
    value = (value or "").strip()
    if not value:
        return ""
    if value.startswith("//"):
        return "https:" + value
    if not value.startswith(("http://", "https://")):
        value = "https://" + value
    return value if len(value) <= 1000 else ""  # a cut URL is a broken one


def _chat_transferred(*, session: HitlSession, payload: dict, raw: dict) -> Outcome:
    if not session.is_open:
        return Outcome(IGNORED, f"session is {session.status}")
    to = payload.get("transferred_to") or {}
    to = {"agent_ids": list(to.get("agent_ids") or []), "group_ids": list(to.get("group_ids") or [])}
    reason = payload.get("reason") or ""
    requester_id = payload.get("requester_id") or ""
    queue = payload.get("queue") or None
    if queue is not None:
        queue = {name: queue.get(name) for name in ("position", "wait_time", "queued_at")}

    # "The same transfer" = same target, reason and requester as the last assignment-or-transfer
    # the session went through; a later transfer back to the same group is a new one.
    signature = hashlib.sha256(json.dumps(
        [requester_id, reason, sorted(to["agent_ids"]), sorted(to["group_ids"])]
    ).encode()).hexdigest()[:32]
    last = session.events.filter(
        kind__in=[SessionEvent.Kind.ASSIGNED, SessionEvent.Kind.TRANSFERRED]
    ).order_by("-created_at", "-id").first()
    if last is not None and last.kind == SessionEvent.Kind.TRANSFERRED and last.data.get("signature") == signature:
        return Outcome(DUPLICATE, "the session already went through this transfer")

    source = payload.get("transferred_from") or {}
    from_ = {
        "agent_ids": list(source.get("agent_ids") or ([session.agent_id] if session.agent_id else [])),
        "group_ids": list(source.get("group_ids") or _current_groups(session)),
    }
    # The agent stays only when the chat went to them (their join may have arrived first); a
    # queue or another target means nobody is on it until the next agent joins.
    if queue is not None or session.agent_id not in to["agent_ids"]:
        session.status = HitlSession.Status.WAITING
        session.agent_id = session.agent_name = session.agent_avatar = ""
        session.save(update_fields=["status", "agent_id", "agent_name", "agent_avatar"])
    record_event(
        session=session, kind=SessionEvent.Kind.TRANSFERRED, actor=requester_id,
        summary=_transfer_summary(to, queue, reason),
        data={"from": from_, "to": to, "reason": reason, "queue": queue, "requester_id": requester_id,
              "signature": signature},
        raw=raw,
    )
    queue_callback(
        session=session, type="session.transferred",
        data={"from": from_, "to": to, "reason": reason, "queue": queue, "requester_id": requester_id,
              "status": session.status},
    )
    return Outcome(PROCESSED, "transferred")


def _current_groups(session: HitlSession) -> list[int]:
    """The group the chat was in before this transfer: the last transfer's target group, else the
    integration's group (where the console starts chats). Not `chat_access_updated`: LiveChat sends
    it *before* `chat_transferred`, so it already names the new group."""
    for data in (
        session.events.filter(kind=SessionEvent.Kind.TRANSFERRED)
        .order_by("-created_at", "-id")
        .values_list("data", flat=True)
    ):
        groups = (data.get("to") or {}).get("group_ids")
        if groups:
            return list(groups)
    return [session.integration.group_id]


def _transfer_summary(to: dict, queue: dict | None, reason: str) -> str:
    targets = [f"agent {a}" for a in to["agent_ids"]] + [f"group {g}" for g in to["group_ids"]]
    text = "transferred to " + (", ".join(targets) or "LiveChat's routing")
    if queue and queue.get("position") is not None:
        text += f", queue position {queue['position']}"
    return text + (f" ({reason})" if reason else "")


# ---- closing, and what is only recorded ----------------------------------------------------


def _chat_deactivated(*, session: HitlSession, payload: dict, raw: dict) -> Outcome:
    user_id = payload.get("user_id") or ""
    if not user_id:
        closed_by, reason = "router", "LiveChat closed the chat (routing or inactivity)"
    elif _is_customer(session, user_id):
        # Our LiveChat customer only ever acts for the bot (POST /sessions/{id}/stop).
        closed_by, reason = "bot", "the bot's customer closed the chat"
    else:
        closed_by, reason = user_id, "the agent closed the chat"
    if not close_session(session=session, closed_by=closed_by, reason=reason, raw=raw):
        return Outcome(DUPLICATE, f"session was already {session.status}")
    return Outcome(PROCESSED, f"closed by {closed_by}")


def _incoming_chat(*, session: HitlSession, payload: dict, raw: dict) -> Outcome:
    chat = payload["chat"]
    thread_id = (chat.get("thread") or {}).get("id") or session.thread_id
    users = [u for u in chat.get("users") or [] if isinstance(u, dict)]
    created = record_event(
        session=session, kind=SessionEvent.Kind.INCOMING_CHAT, actor="livechat",
        summary=f"LiveChat opened thread {thread_id} of chat {chat['id']}",
        data={"chat_id": chat["id"], "thread_id": thread_id,
              "group_ids": (chat.get("access") or {}).get("group_ids") or [],
              "transferred_from": payload.get("transferred_from")},
        raw=raw, dedupe_key=f"incoming_chat:{thread_id}",
    )
    # A chat routed straight to an agent may name them here without a user_added_to_chat.
    for user in users:
        if user.get("type") == "agent" and user.get("present") is not False and user.get("visibility") != "agents":
            if isinstance(user.get("id"), str) and user["id"]:
                return _assign(session=session, user=user, raw=raw, reason="routing", requester_id="")
    return Outcome(PROCESSED if created else DUPLICATE, "audit trail")


def _chat_access_updated(*, session: HitlSession, payload: dict, raw: dict) -> Outcome:
    group_ids = list((payload.get("access") or {}).get("group_ids") or [])
    record_event(
        session=session, kind=SessionEvent.Kind.ACCESS_UPDATED, actor="livechat",
        summary="chat access: groups " + ", ".join(map(str, group_ids)), data={"group_ids": group_ids}, raw=raw,
    )
    return Outcome(PROCESSED, "audit trail")


@dataclass(frozen=True)
class _Handler:
    locate: Callable[[dict], tuple[str, str | None]]  # payload → (chat id, thread id or None)
    apply: Callable[..., Outcome]


def _chat_and_thread(payload: dict) -> tuple[str, str | None]:
    return payload["chat_id"], payload.get("thread_id") or None


_HANDLERS: dict[str, _Handler] = {
    "incoming_event": _Handler(_chat_and_thread, _incoming_event),
    "user_added_to_chat": _Handler(_chat_and_thread, _user_added_to_chat),
    "chat_transferred": _Handler(_chat_and_thread, _chat_transferred),
    "chat_deactivated": _Handler(_chat_and_thread, _chat_deactivated),
    "incoming_chat": _Handler(
        lambda p: (p["chat"]["id"], (p["chat"].get("thread") or {}).get("id") or None), _incoming_chat
    ),
    "chat_access_updated": _Handler(lambda p: (p["id"], None), _chat_access_updated),
}
