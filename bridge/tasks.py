"""Celery tasks: thin adapters that call services. Rows are committed before a task is queued.

Services are imported inside the tasks because services queue these tasks (a module-level
import would be circular).
"""
from celery import shared_task

from bridge.logging import bind_session


@shared_task(name="bridge.send_session_messages")
def send_session_messages(session_id):
    """Send a session's queued user/bot messages to LiveChat, in order."""
    from bridge.services import outbound

    with bind_session(session_id):
        outbound.send_pending_messages(session_id=session_id)


@shared_task(name="bridge.process_webhooks")
def process_webhooks(integration_id, chat_id):
    """Apply a chat's accepted LiveChat webhooks, in order, and send the bot callbacks they cause."""
    from bridge.services import webhooks

    webhooks.process_pending_webhooks(integration_id=integration_id, chat_id=chat_id)


@shared_task(name="bridge.deliver_session_callbacks")
def deliver_session_callbacks(session_id):
    """Send a session's pending bot callbacks, in order."""
    from bridge.services import callbacks

    with bind_session(session_id):
        callbacks.deliver_pending(session_id=session_id)


@shared_task(name="bridge.run_due_work")
def run_due_work():
    """Pick up what is due: webhooks not yet applied, retries of messages and callbacks, starts
    abandoned mid-way."""
    from bridge.services import callbacks, outbound, sessions, webhooks

    webhooks.kick_pending_webhooks()
    sessions.fail_abandoned_starts()
    outbound.kick_due_messages()
    callbacks.kick_due_deliveries()


@shared_task(name="bridge.renew_customer_tokens")
def renew_customer_tokens():
    from bridge.services import customers

    customers.renew_expiring_tokens()


@shared_task(name="bridge.purge_expired_transcripts")
def purge_expired_transcripts():
    from bridge.services import idempotency, retention, webhooks

    retention.purge_expired_transcripts()
    idempotency.purge_expired_records()
    webhooks.purge_webhook_receipts()


# (seconds between runs, task) — used by celery beat and by the embedded scheduler alike.
PERIODIC = [
    (2.0, run_due_work),
    (900.0, renew_customer_tokens),
    (3600.0, purge_expired_transcripts),
]
