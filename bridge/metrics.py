"""Operational signals, served with django-prometheus' own at /metrics.

- `hitl_webhooks_total{action, outcome}`: LiveChat webhooks by how the endpoint answered them:
  accepted (stored for a worker), duplicate, ignored, unauthorized, invalid, not_found.
- `hitl_webhooks_processed_total{action, outcome}`: accepted webhooks a worker applied: processed,
  duplicate (a change already made), ignored (not our chat, not for the bot), failed (set aside
  after repeated errors).
- `hitl_delivery_attempts_total{queue, outcome}`: tries of the outboxes (queue `callback`: bot
  callbacks; `message`: user messages to LiveChat) by outcome: delivered, retry, dead.
- `hitl_dead_letters_total{queue}`: rows given up on (a dead-lettered callback, a message failed
  for good): each waits for an operator.
- `hitl_queue_lag_seconds{queue}`: from the moment a row was due (`next_attempt_at`, else
  `created_at`) to the moment a worker took it to send: the outbox's backlog.
- `hitl_livechat_calls_total{method, outcome}`: LiveChat API calls by method and `ok` or the
  error type.

Label values come from fixed sets, never from request data as given (an attacker must not be able
to mint time series). With several processes (gunicorn workers, Celery), set
PROMETHEUS_MULTIPROC_DIR so prometheus_client aggregates them (see its multiprocess mode).
"""
from __future__ import annotations

from datetime import datetime, timezone

from prometheus_client import Counter, Histogram

WEBHOOK_ACTIONS = frozenset({
    "incoming_event", "user_added_to_chat", "chat_transferred", "chat_deactivated", "incoming_chat",
    "chat_access_updated", "event_updated", "user_removed_from_chat", "chat_properties_updated",
    "thread_properties_updated", "events_marked_as_seen", "incoming_rich_message_postback",
})
WEBHOOK_OUTCOMES = {
    # the service's results → the metric's outcomes
    "accepted": "accepted", "duplicate": "duplicate", "ignored": "ignored",
    "unauthorized": "unauthorized", "invalid": "invalid", "not_found": "not_found",
}
WEBHOOK_PROCESSED_OUTCOMES = ("processed", "duplicate", "ignored", "failed")
LIVECHAT_ERROR_TYPES = frozenset({
    "authentication", "authorization", "validation", "chat_inactive", "not_found", "too_many_requests",
    "limit_reached", "missing_access", "customer_banned", "groups_offline", "group_not_found",
    "entity_too_large", "request_timeout", "service_unavailable", "internal", "license_expired", "agent_offline",
    "chat_anonymized", "timeout", "connection", "http", "invalid_request", "invalid_client", "identity_exception",
    "unsupported_grant_type",
})
LIVECHAT_METHODS = frozenset({
    "token", "start_chat", "resume_chat", "send_event", "deactivate_chat", "get_chat", "update_customer",
    "get_customer", "upload_file", "transfer_chat", "list_chats", "list_groups", "get_group", "register_webhook",
    "list_webhooks", "unregister_webhook", "enable_license_webhooks", "disable_license_webhooks",
    "get_license_webhooks_state",
})
QUEUES = ("callback", "message")
DELIVERY_OUTCOMES = ("delivered", "retry", "dead")

webhooks = Counter("hitl_webhooks", "LiveChat webhooks received, by action and outcome", ["action", "outcome"])
webhooks_processed = Counter(
    "hitl_webhooks_processed", "Accepted LiveChat webhooks applied by a worker, by action and outcome",
    ["action", "outcome"],
)
delivery_attempts = Counter(
    "hitl_delivery_attempts", "Tries of the outboxes (bot callbacks, messages to LiveChat), by outcome",
    ["queue", "outcome"],
)
dead_letters = Counter("hitl_dead_letters", "Outbox rows given up on (they wait for an operator)", ["queue"])
queue_lag = Histogram(
    "hitl_queue_lag_seconds", "Seconds from when an outbox row was due to when a worker took it to send",
    ["queue"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 36000),
)
livechat_calls = Counter("hitl_livechat_calls", "LiveChat API calls, by method and outcome", ["method", "outcome"])

# Every series exists from the start (at 0), so dashboards and alerts see them before the first event.
for _outcome in set(WEBHOOK_OUTCOMES.values()):
    webhooks.labels("other", _outcome)
for _outcome in WEBHOOK_PROCESSED_OUTCOMES:
    webhooks_processed.labels("other", _outcome)
for _queue in QUEUES:
    dead_letters.labels(_queue)
    queue_lag.labels(_queue)
    for _outcome in DELIVERY_OUTCOMES:
        delivery_attempts.labels(_queue, _outcome)


def webhook(action: object, outcome: str) -> None:
    """Counts one webhook. `action` is whatever the body said (bounded here); `outcome` one of
    WEBHOOK_OUTCOMES' keys or values."""
    label = action if isinstance(action, str) and action in WEBHOOK_ACTIONS else "other"
    webhooks.labels(label, WEBHOOK_OUTCOMES.get(outcome, "other")).inc()


def webhook_processed(action: str, outcome: str) -> None:
    """Counts one accepted webhook a worker applied (`action` was validated when it was accepted)."""
    label = action if action in WEBHOOK_ACTIONS else "other"
    webhooks_processed.labels(label, outcome if outcome in WEBHOOK_PROCESSED_OUTCOMES else "failed").inc()


def delivery_attempt(queue: str, outcome: str) -> None:
    """Counts one try of an outbox row: `delivered`, `retry` or `dead` (a dead one is also a dead letter)."""
    delivery_attempts.labels(queue, outcome).inc()
    if outcome == "dead":
        dead_letters.labels(queue).inc()


def callback_attempt(state: str) -> None:
    """Counts one try of a callback from the Delivery state it left: delivered, pending (retry) or dead."""
    delivery_attempt("callback", {"delivered": "delivered", "pending": "retry"}.get(state, "dead"))


def observe_lag(queue: str, due: datetime | None) -> None:
    """Records how long a row waited past `due` before a worker took it (0 when early)."""
    if due is None:
        return
    lag = (datetime.now(timezone.utc) - due).total_seconds()
    queue_lag.labels(queue).observe(max(0.0, lag))


def livechat_call(method: str, error_type: str | None) -> None:
    """Counts one LiveChat call: `ok`, or the (bounded) error type."""
    outcome = "ok" if error_type is None else (error_type if error_type in LIVECHAT_ERROR_TYPES else "other")
    livechat_calls.labels(method if method in LIVECHAT_METHODS else "other", outcome).inc()
