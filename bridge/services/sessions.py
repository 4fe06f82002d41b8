"""Handoffs: starting a LiveChat chat for a bot conversation, reading it, stopping it.

`start_session` calls LiveChat within the caller's request (retrying transient errors within
~10 s) because the bot wants to know the handoff happened; messages after that go through the
outbox (bridge.services.outbound).
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from bridge.livechat import LiveChatError, LiveChatPermanentError, call_with_retry
from bridge.models import EndUser, HitlSession, Integration, Message, SessionEvent

from .audit import record_event
from .callbacks import queue_callback
from .customers import customer_client
from .errors import Conflict, LiveChatUnavailable, NotFound
from .lifecycle import close_session
from .outbound import enqueue_session, outbox, send_pending_messages

log = logging.getLogger(__name__)

# How long a request may spend on LiveChat (retries included) before answering 502.
LIVECHAT_BUDGET_SECONDS = 10.0
# LiveChat takes up to 16 KB of text per event; stay a little under it.
MAX_EVENT_BYTES = 16_000
AUTHOR_LABELS = {"user": "User", "bot": "Bot"}
TRANSCRIPT_HEADING = "Conversation with the bot so far:"
NO_CONTEXT_TEXT = "The bot handed this conversation over to an agent."
# A start that has not heard from LiveChat after this long died with its process.
ABANDONED_START = timedelta(minutes=5)


# ---------------------------------------------------------------- reading

def get_session(*, integration: Integration, session_id) -> HitlSession:
    """The integration's session; NotFound for any other (another tenant's is 'not found' too)."""
    session = (
        HitlSession.objects.select_related("end_user")
        # Most calls never use the customer's LiveChat credentials: not decrypted unless read.
        .defer("end_user__customer_token", "end_user__customer_cookies")
        .filter(integration=integration, pk=session_id)
        .first()
    )
    if session is None:
        raise NotFound(f"no session with id {session_id}")
    # The caller's integration is the session's (the filter says so): reuse it rather than join
    # it twice more and decrypt its secrets again on every API call.
    session.integration = integration
    if session.end_user.integration_id == integration.pk:
        session.end_user.integration = integration
    return session


def session_messages(*, session: HitlSession, after: int | None = None, limit: int = 100) -> list[Message]:
    """The transcript in order (agents' internal notes never included), after message id `after`."""
    messages: QuerySet[Message] = session.messages.filter(internal=False).order_by("id")
    if after is not None:
        messages = messages.filter(id__gt=after)
    return list(messages[:limit])


# ---------------------------------------------------------------- the opening events

def split_text(text: str, *, max_bytes: int = MAX_EVENT_BYTES) -> list[str]:
    """`text` in pieces of at most `max_bytes` UTF-8 bytes, cut at a line break or space when one
    is near, never inside a character."""
    pieces = []
    data = text.encode()
    while len(data) > max_bytes:
        cut = max_bytes
        while cut and (data[cut] & 0xC0) == 0x80:  # not inside a multi-byte character
            cut -= 1
        for separator in (b"\n", b" "):
            at = data.rfind(separator, max_bytes // 2, cut)
            if at > 0:
                cut = at
                break
        pieces.append(data[:cut].decode().rstrip())
        data = data[cut:].lstrip(b"\n ")
    if data:
        pieces.append(data.decode())
    return pieces


def opening_events(*, title: str, description: str, transcript: Sequence[dict]) -> list[dict]:
    """The customer events that open the chat, so the agent reads the whole story in order:
    the title and description, then the transcript as "User: …" / "Bot: …" lines packed into as
    few events as LiveChat's 16 KB limit allows."""
    texts = split_text("\n\n".join(part for part in (title.strip(), description.strip()) if part))
    lines = [f"{AUTHOR_LABELS.get(entry['author'], 'User')}: {entry['text']}" for entry in transcript]
    if lines:
        block = TRANSCRIPT_HEADING
        for line in lines:
            candidate = f"{block}\n{line}"
            if len(candidate.encode()) <= MAX_EVENT_BYTES:
                block = candidate
                continue
            texts.append(block)
            if len(line.encode()) <= MAX_EVENT_BYTES:
                block = line
            else:
                *whole, block = split_text(line)
                texts.extend(whole)
        texts.append(block)
    if not texts:
        texts = [NO_CONTEXT_TEXT]
    return [{"type": "message", "text": text} for text in texts]


def session_fields(metadata: dict[str, Any]) -> list[dict[str, str]]:
    """The session's metadata as LiveChat customer session fields: [{"key": "value"}], strings."""
    fields = []
    for key, value in metadata.items():
        if value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
        fields.append({str(key): text})
    return fields


# ---------------------------------------------------------------- starting

def start_session(
    *,
    integration: Integration,
    end_user: EndUser,
    conversation_id: str,
    title: str = "",
    description: str = "",
    transcript: Sequence[dict] = (),
    metadata: dict | None = None,
    budget_seconds: float | None = None,
) -> HitlSession:
    """Opens a LiveChat chat for the conversation and returns the session (status `waiting`).

    Conflict when the conversation already has an open session; LiveChatUnavailable (the
    session recorded as `failed`) when LiveChat still fails after retries within the budget.
    """
    metadata = metadata or {}
    session = _create_pending(
        integration=integration, end_user=end_user, conversation_id=conversation_id,
        title=title, description=description, metadata=metadata,
    )
    deadline = time.monotonic() + (LIVECHAT_BUDGET_SECONDS if budget_seconds is None else budget_seconds)

    def remaining() -> float:
        return max(0.0, deadline - time.monotonic())

    try:
        with customer_client(end_user=end_user) as client:
            _update_customer(session=session, client=client, metadata=metadata, budget=remaining)
            chat = call_with_retry(
                lambda: client.start_chat(
                    group_id=integration.group_id,
                    events=opening_events(title=title, description=description, transcript=transcript),
                ),
                budget_seconds=remaining(),
            )
    except LiveChatError as error:
        _record_failure(session=session, transcript=transcript, error=f"LiveChat did not start the chat: {error}",
                        data={"livechat_error": error.type, "status": error.status})
        raise LiveChatUnavailable(
            f"LiveChat did not start the chat ({error.type}); the session is recorded as failed, "
            "retry the request later",
            details={"session_id": str(session.pk), "livechat_error_type": error.type},
        ) from None
    except Exception:
        _record_failure(session=session, transcript=transcript, error="internal error while starting the chat",
                        data={})
        raise
    _record_started(session=session, transcript=transcript, chat=chat)
    return session


def _create_pending(*, integration, end_user, conversation_id, title, description, metadata) -> HitlSession:
    open_session = _open_session(integration=integration, conversation_id=conversation_id)
    if open_session is None:
        try:
            with transaction.atomic():
                return HitlSession.objects.create(
                    integration=integration, end_user=end_user, conversation_id=conversation_id,
                    title=title, description=description, metadata=metadata,
                )
        except IntegrityError:  # a concurrent request opened one first (one_open_session_per_conversation)
            open_session = _open_session(integration=integration, conversation_id=conversation_id)
            if open_session is None:
                raise
    raise Conflict(
        f"conversation {conversation_id!r} already has an open session; stop it first or keep using it",
        details={"session_id": str(open_session.pk), "status": open_session.status},
    )


def _open_session(*, integration, conversation_id) -> HitlSession | None:
    return HitlSession.objects.filter(
        integration=integration, conversation_id=conversation_id, status__in=HitlSession.OPEN_STATUSES
    ).first()


def _update_customer(*, session: HitlSession, client, metadata: dict, budget) -> None:
    """Name, email, avatar and session fields, before the chat exists so the agent's first view
    of it has them. A refusal (say LiveChat rejects the email) is recorded, not fatal."""
    end_user = session.end_user
    fields = dict(
        name=end_user.name or end_user.external_id,
        email=end_user.email or None,
        avatar=end_user.picture_url or None,
        session_fields=session_fields(metadata) or None,
    )
    try:
        call_with_retry(lambda: client.update_customer(**fields), budget_seconds=budget())
    except LiveChatPermanentError as error:
        record_event(
            session=session, kind=SessionEvent.Kind.ERROR, actor="console",
            summary=f"LiveChat refused the customer's details: {error}",
            data={"livechat_error": error.type},
        )


def _opening_payload(entry: dict) -> dict:
    created_at = entry.get("created_at")
    if not created_at:
        return {"opening": True}
    text = created_at.isoformat() if hasattr(created_at, "isoformat") else str(created_at)
    return {"opening": True, "created_at": text}


def _transcript_rows(*, session: HitlSession, transcript: Sequence[dict], state: str, error: str = "") -> None:
    """The bot's transcript as messages of the session, for the console's transcript view."""
    now = timezone.now()
    Message.objects.bulk_create(
        Message(
            session=session,
            direction=Message.Direction.TO_AGENT,
            author=entry["author"],
            kind=Message.Kind.TEXT,
            text=entry["text"],
            payload=_opening_payload(entry),
            delivery_state=state,
            sent_at=now if state == Message.Delivery.SENT else None,
            last_error=error,
        )
        for entry in transcript
    )


def _record_started(*, session: HitlSession, transcript: Sequence[dict], chat: dict) -> None:
    chat_id, thread_id = chat["chat_id"], chat.get("thread_id") or ""
    with transaction.atomic():
        started = HitlSession.objects.filter(pk=session.pk, status=HitlSession.Status.PENDING).update(
            status=HitlSession.Status.WAITING, chat_id=chat_id, thread_id=thread_id
        )
        if not started:
            # Stopped while LiveChat was starting it: keep the ids, close the chat we just opened.
            HitlSession.objects.filter(pk=session.pk).update(chat_id=chat_id, thread_id=thread_id)
        session.refresh_from_db()
        _transcript_rows(session=session, transcript=transcript, state=Message.Delivery.SENT)
        record_event(
            session=session, kind=SessionEvent.Kind.STARTED, actor="bot",
            summary=f"LiveChat chat {chat_id} started",
            data={"chat_id": chat_id, "thread_id": thread_id, "event_ids": chat.get("event_ids", [])},
        )
        if started:
            queue_callback(session=session, type="session.started",
                           data={"livechat_chat_id": chat_id, "status": session.status})
            enqueue_session(session_id=session.pk)  # messages the bot sent while the chat was starting
    if not started:
        _deactivate_quietly(session=session)


def _record_failure(*, session: HitlSession, transcript: Sequence[dict], error: str, data: dict) -> None:
    with transaction.atomic():
        failed = HitlSession.objects.filter(pk=session.pk, status=HitlSession.Status.PENDING).update(
            status=HitlSession.Status.FAILED, last_error=error[:1000], closed_at=timezone.now()
        )
        session.refresh_from_db()
        _transcript_rows(session=session, transcript=transcript, state=Message.Delivery.FAILED, error=error[:500])
        record_event(session=session, kind=SessionEvent.Kind.FAILED, actor="console", summary=error, data=data)
        if failed:
            queue_callback(session=session, type="session.failed",
                           data={"error": {"type": "livechat_error", "message": error}})
    log.warning("session %s failed to start: %s", session.pk, error)


def fail_abandoned_starts(*, older_than: timedelta = ABANDONED_START) -> int:
    """Marks sessions whose start died mid-way (the process was killed before LiveChat answered)
    as failed, so they stop holding their conversation. Meant for the periodic sweep."""
    stuck = HitlSession.objects.select_related("integration", "end_user").filter(
        status=HitlSession.Status.PENDING, chat_id="", created_at__lt=timezone.now() - older_than
    )
    count = 0
    for session in stuck[:100]:
        _record_failure(session=session, transcript=(), error="the start was interrupted before LiveChat answered",
                        data={})
        count += 1
    return count


def _deactivate_quietly(*, session: HitlSession) -> None:
    try:
        with customer_client(end_user=session.end_user) as client:
            call_with_retry(lambda: client.deactivate_chat(chat_id=session.chat_id), budget_seconds=5.0)
    except LiveChatError as error:
        log.warning("session %s: could not close chat %s: %s", session.pk, session.chat_id, error)


# ---------------------------------------------------------------- stopping

def stop_session(
    *, session: HitlSession, reason: str = "", closed_by: str = "bot", budget_seconds: float | None = None
) -> HitlSession:
    """Closes the chat in LiveChat (deactivate_chat as the customer) and the session, once.

    `closed_by` names who asked: "bot" through the API, "staff:<username>" from the console.

    Idempotent: a session that is already over is returned as it is, without calling LiveChat.
    A chat LiveChat no longer knows or has closed already is closed locally all the same;
    LiveChat being unavailable (after retries) is LiveChatUnavailable and the session stays open.
    """
    if not session.is_open:
        return session
    note = {}
    if session.chat_id:
        if outbox(session_id=session.pk).filter(next_attempt_at__lte=timezone.now()).exists():
            send_pending_messages(session_id=session.pk)  # what the user said last goes first
        try:
            with customer_client(end_user=session.end_user) as client:
                call_with_retry(
                    lambda: client.deactivate_chat(chat_id=session.chat_id),
                    budget_seconds=LIVECHAT_BUDGET_SECONDS if budget_seconds is None else budget_seconds,
                )
        except LiveChatPermanentError as error:
            # chat_inactive / not_found: already closed there. Anything else permanent: nothing a
            # retry would change; close here and keep what LiveChat said in the audit trail.
            note = {"livechat_error": error.type, "message": error.message}
        except LiveChatError as error:
            raise LiveChatUnavailable(
                f"LiveChat did not close the chat ({error.type}); the session is still open, retry the stop",
                details={"session_id": str(session.pk), "livechat_error_type": error.type},
            ) from None
    with transaction.atomic():
        close_session(session=session, closed_by=closed_by, reason=reason, raw=note or None)
    session.refresh_from_db()
    return session
