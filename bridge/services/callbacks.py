"""Bot callbacks: an outbox of signed, retried, per-session ordered deliveries.

Life of a callback
- `queue_callback` writes a `Delivery` row in the caller's transaction (the event and its
  callback commit together or not at all) and, after commit, asks a worker to send the session's
  pending callbacks (`bridge.tasks.deliver_session_callbacks` → `deliver_pending`).
- A worker *claims* a row with a conditional UPDATE (pending → delivering, with a lease in
  `claimed_until`) before calling the bot, the way healthchecks' sendalerts claims its work: if
  the UPDATE changed nothing, another worker has it. A worker killed mid-call leaves a row in
  `delivering` with an expired lease; the periodic sweep (`kick_due_deliveries`) reclaims it, so a
  restart loses nothing (the bot may then see the same `webhook-id` twice, which is what the id is
  for).
- Each try is POSTed through `bridge.net.safe_request` (SSRF guard, timeouts) with Standard
  Webhooks headers; `webhook-id` is the delivery's `event_id` on every try. A `DeliveryAttempt`
  row records status, duration, the (truncated) answer and the error, as Saleor keeps its attempts.
- 2xx → delivered. Timeouts, connection errors, 408, 429 and 5xx → retried after the next step of
  `settings.CALLBACK_RETRY_SCHEDULE` (kept in the row: `attempts`, `next_attempt_at`); other
  answers (4xx, redirects) and an exhausted schedule → dead-lettered (`state=dead`), the last
  status and answer kept for the operator, who can `redeliver` it.

Ordering: per session only the oldest undelivered callback is attempted; a later one waits until
the earlier one is delivered **or dead-lettered**. Dead letters are skipped on purpose: one
callback the bot refuses for good (a 400, say) must not block the session's later callbacks
forever; the operator sees it in the dead letters and can redeliver it. Different sessions never
wait for each other.
"""
import json
import logging
import secrets
import time
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta

import requests
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from bridge import dispatch, metrics, net
from bridge.logging import bind_session
from bridge.models import Delivery, DeliveryAttempt, HitlSession

from .audit import record_event
from .integration_cache import cached_integration
from .signing import signature_headers

log = logging.getLogger(__name__)

# Longer than one HTTP try can take (net.DEFAULT_TIMEOUT is 3 s connect + 10 s per read), so a
# live worker never loses its claim; short enough that a dead worker's row is retried soon.
CLAIM_LEASE = timedelta(seconds=120)
# What we keep of a bot's answer, per attempt and on the delivery.
MAX_STORED_RESPONSE = 2048
RETRYABLE_STATUSES = frozenset({408, 429})
# (connect, read) seconds per try; a module constant so tests can shorten it.
TIMEOUT = net.DEFAULT_TIMEOUT
USER_AGENT = "hitl-console-callbacks/1"
# How many sessions one sweep hands to workers; the next sweep (every few seconds) takes the rest.
SWEEP_BATCH = 500

PENDING, DELIVERING, DELIVERED, DEAD = (
    Delivery.State.PENDING,
    Delivery.State.DELIVERING,
    Delivery.State.DELIVERED,
    Delivery.State.DEAD,
)
UNDELIVERED = (PENDING, DELIVERING)


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
    _enqueue_session(session.id)
    return delivery


def deliver_pending(*, session_id) -> int:
    """Sends a session's due callbacks oldest first; returns how many were delivered.

    Stops at the first callback that must be retried later (the ones after it wait) or that
    another worker is sending; dead-lettered callbacks are passed over.
    """
    delivered = 0
    while True:
        delivery = _claim_next(session_id=session_id)
        if delivery is None:
            return delivered
        state = _attempt(delivery)
        if state == DELIVERED:
            delivered += 1
        elif state != DEAD:
            return delivered


def kick_due_deliveries() -> int:
    """The periodic sweep: hands every session with a due callback to a worker.

    Due = pending with `next_attempt_at` reached, or `delivering` with an expired lease (its
    worker died). The rows are the truth; this only decides when to look. Returns the number of
    sessions handed over.
    """
    now = timezone.now()
    rows = (
        Delivery.objects.filter(_claimable(now))
        .order_by(F("next_attempt_at").asc(nulls_first=True), "id")
        .values_list("id", "session_id")[: SWEEP_BATCH * 4]
    )
    session_ids: dict = {}
    for delivery_id, session_id in rows:
        if session_id is None:
            # No session, no order to keep: send it on its own.
            _deliver_one(delivery_id)
        elif len(session_ids) < SWEEP_BATCH:
            session_ids.setdefault(session_id, None)
    for session_id in session_ids:
        _enqueue_session(session_id)
    return len(session_ids)


@transaction.atomic
def redeliver(*, delivery: Delivery, actor: str = "") -> Delivery:
    """Sends a dead-lettered or delivered callback again, with the same event id (the console's
    retry button). A pending or in-flight one is left alone. Returns the refreshed row.

    The retry schedule counts every try of the event, so a redelivered dead letter gets one
    immediate try and is dead-lettered again if that fails. Per session order still holds: until
    it is delivered (or dead again), the session's later callbacks wait for it.
    """
    changed = Delivery.objects.filter(pk=delivery.pk, state__in=(DEAD, DELIVERED)).update(
        state=PENDING, next_attempt_at=timezone.now(), claimed_until=None, delivered_at=None
    )
    delivery.refresh_from_db()
    if changed:
        log.info("callback %s (%s) queued for redelivery by %s", delivery.event_id, delivery.type, actor or "?")
        if delivery.session_id:
            record_event(
                session=delivery.session,
                kind="manual",
                actor=actor,
                summary=f"callback {delivery.type} {delivery.event_id} redelivered",
                data={"delivery_id": delivery.pk, "event_id": delivery.event_id},
            )
            _enqueue_session(delivery.session_id)
        # A callback without a session is due now: the next sweep sends it.
    return delivery


# ---- claiming ------------------------------------------------------------------------------


# Sessions whose new callbacks the current worker sends itself (see send_callbacks_at_the_end).
_sent_here: ContextVar[dict | None] = ContextVar("callbacks_sent_here", default=None)


@contextmanager
def send_callbacks_at_the_end():
    """Within the block, callbacks queued are not handed to a task each: the worker sends them
    itself when the block ends (after its transactions committed), saving a task between an
    agent's reply and the bot. Whatever this does not send, the periodic sweep does."""
    sessions: dict = {}
    token = _sent_here.set(sessions)
    try:
        yield
    finally:
        _sent_here.reset(token)
        for session_id in sessions:
            try:
                with bind_session(session_id):
                    deliver_pending(session_id=session_id)
            except Exception:
                log.exception("sending the callbacks of session %s failed; the sweep will retry", session_id)


def _enqueue_session(session_id) -> None:
    sessions = _sent_here.get()
    if sessions is not None:
        sessions.setdefault(session_id, None)
        return
    from bridge.tasks import deliver_session_callbacks

    dispatch.enqueue(deliver_session_callbacks, str(session_id))


def _claimable(now) -> Q:
    due = Q(state=PENDING) & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    stale = Q(state=DELIVERING) & (Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
    return due | stale


def _claim_next(*, session_id) -> Delivery | None:
    """Claims the session's oldest undelivered callback if it is due; None when there is none,
    it is not due yet, or another worker holds it.

    One statement (the hot path of every callback): the sub-select finds the head, the UPDATE
    claims it only if it is claimable. Of two workers racing, the second waits for the first's
    row lock, re-checks the row, finds it claimed and changes nothing.
    """
    now = timezone.now()
    table = connection.ops.quote_name(Delivery._meta.db_table)
    claimed = list(Delivery.objects.raw(
        f"UPDATE {table} SET state = %s, claimed_until = %s, attempts = attempts + 1 "
        f"WHERE id = (SELECT id FROM {table} WHERE session_id = %s AND state IN (%s, %s) ORDER BY id LIMIT 1) "
        "AND ((state = %s AND (next_attempt_at IS NULL OR next_attempt_at <= %s)) "
        "OR (state = %s AND (claimed_until IS NULL OR claimed_until < %s))) RETURNING *",
        [DELIVERING, now + CLAIM_LEASE, _db_uuid(session_id), PENDING, DELIVERING, PENDING, now, DELIVERING, now],
    ))
    if not claimed:
        return None
    delivery = claimed[0]
    metrics.observe_lag("callback", delivery.next_attempt_at or delivery.created_at)
    return delivery


def _db_uuid(value):
    return Delivery._meta.get_field("session").target_field.get_db_prep_value(value, connection)


def _claim(delivery: Delivery) -> Delivery | None:
    """pending/stale → delivering, in one conditional UPDATE; None if it changed nothing.

    `attempts` in the WHERE clause makes the claim a compare-and-swap (a row that was claimed and
    released in between does not match), and the NOT EXISTS keeps the per-session order inside
    the same statement: no row is sent while an older one of its session is undelivered.
    """
    now = timezone.now()
    older_undelivered = Delivery.objects.filter(
        session_id=OuterRef("session_id"), id__lt=OuterRef("id"), state__in=UNDELIVERED
    )
    claimed = (
        Delivery.objects.filter(_claimable(now), pk=delivery.pk, attempts=delivery.attempts)
        .filter(~Exists(older_undelivered))
        .update(state=DELIVERING, claimed_until=now + CLAIM_LEASE, attempts=F("attempts") + 1)
    )
    if not claimed:
        return None
    metrics.observe_lag("callback", delivery.next_attempt_at or delivery.created_at)
    # Counting the try at claim time means a callback that kills its worker cannot loop forever.
    # The compare-and-swap on `attempts` means the row is the version we read plus this UPDATE:
    # no need to read it again.
    delivery.state, delivery.claimed_until, delivery.attempts = DELIVERING, now + CLAIM_LEASE, delivery.attempts + 1
    return delivery


def _deliver_one(delivery_id) -> None:
    delivery = Delivery.objects.filter(pk=delivery_id).first()
    if delivery is not None:
        claimed = _claim(delivery)
        if claimed is not None:
            _attempt(claimed)


# ---- one try -------------------------------------------------------------------------------


def _attempt(delivery: Delivery) -> str:
    """POSTs a claimed delivery once, records the try, and returns the row's new state."""
    integration = cached_integration(delivery.integration_id) or delivery.integration
    status, body, error, retry_after = None, "", "", None
    started = time.monotonic()
    if not integration.callback_url or not integration.callback_secret:
        # Nothing to call or nothing to sign with: the operator must fix the integration first.
        return _record(delivery, status=None, body="", error="the integration has no callback URL or secret",
                       duration_ms=0, retryable=False)
    text = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **signature_headers(secret=integration.callback_secret, msg_id=delivery.event_id, body=text),
    }
    try:
        response = net.safe_request(
            "POST", integration.callback_url, data=text.encode(), headers=headers, stream=True, timeout=TIMEOUT
        )
        try:
            status = response.status_code
            body = _read_limited(response)
            retry_after = _retry_after(response.headers.get("Retry-After"))
        finally:
            response.close()
    except net.UnsafeURL as exc:
        # Retried like a connection error: the admin may fix the URL (or DNS may come back), and
        # the next try reads the integration's current URL.
        error = f"refused URL: {exc}"
    except requests.Timeout:
        error = "timeout"
    except requests.RequestException as exc:
        # The exception's text may quote the URL (which can carry a token): keep its class only.
        error = f"connection error: {type(exc).__name__}"
    except Exception as exc:  # a bug must not leave the row claimed until the lease expires
        log.exception("callback %s: unexpected error while sending", delivery.event_id)
        error = f"internal error: {type(exc).__name__}"
    duration_ms = round((time.monotonic() - started) * 1000)

    if error:
        retryable = True
    else:
        retryable = status in RETRYABLE_STATUSES or status >= 500
    return _record(delivery, status=status, body=body, error=error, duration_ms=duration_ms,
                   retryable=retryable, retry_after=retry_after)


def _read_limited(response) -> str:
    """At most MAX_STORED_RESPONSE bytes of the answer: a bot cannot make us buffer megabytes."""
    chunks, size = [], 0
    for chunk in response.iter_content(chunk_size=1024):
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_STORED_RESPONSE:
            break
    return b"".join(chunks)[:MAX_STORED_RESPONSE].decode("utf-8", errors="replace")


def _retry_after(value: str | None) -> int | None:
    try:
        return max(0, int(value)) if value else None
    except ValueError:
        return None


def _record(delivery: Delivery, *, status, body, error, duration_ms, retryable, retry_after=None) -> str:
    """Writes the attempt row and moves the delivery to its next state (delivered, pending again
    with a due time, or dead)."""
    now = timezone.now()
    number = delivery.attempts
    schedule = list(settings.CALLBACK_RETRY_SCHEDULE)
    ok = not error and status is not None and 200 <= status < 300
    fields = {"claimed_until": None, "last_status": status, "last_response": body, "last_error": error}
    if ok:
        fields.update(state=DELIVERED, delivered_at=now, last_error="")
    elif retryable and number <= len(schedule):
        delay = schedule[number - 1]
        if retry_after is not None:
            # Honour the bot's Retry-After, within the longest wait we would make anyway.
            delay = max(delay, min(retry_after, max(schedule)))
        fields.update(state=PENDING, next_attempt_at=now + timedelta(seconds=delay))
    else:
        fields.update(state=DEAD)
    with transaction.atomic():
        DeliveryAttempt.objects.create(
            delivery=delivery,
            number=number,
            status_code=status,
            duration_ms=duration_ms,
            response_body=body,
            error=error,
        )
        # Only the holder of this claim may move the row; if its lease ran out and another worker
        # took over, that worker's outcome counts.
        updated = Delivery.objects.filter(pk=delivery.pk, state=DELIVERING, attempts=number).update(**fields)
    if not updated:
        log.warning("callback %s: claim lost before the result of try %d was stored", delivery.event_id, number)
        delivery.refresh_from_db()
        return delivery.state
    for name, value in fields.items():
        setattr(delivery, name, value)
    state = fields["state"]
    metrics.callback_attempt(state)
    if state == DELIVERED:
        log.info("callback %s %s delivered (try %d, HTTP %s, %d ms)", delivery.type, delivery.event_id, number,
                 status, duration_ms)
    elif state == PENDING:
        log.info("callback %s %s failed (try %d, %s); retry at %s", delivery.type, delivery.event_id, number,
                 error or f"HTTP {status}", fields["next_attempt_at"].isoformat())
    else:
        log.warning("callback %s %s dead-lettered after try %d (%s)", delivery.type, delivery.event_id, number,
                    error or f"HTTP {status}")
    return state
