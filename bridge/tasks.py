"""Celery tasks: thin adapters that call services. Rows are committed before a task is queued."""
from importlib import import_module

from celery import shared_task

from bridge.logging import bind_session


def _service(dotted):
    module, name = dotted.rsplit(".", 1)
    return getattr(import_module(module), name)


@shared_task(name="bridge.send_session_messages")
def send_session_messages(session_id):
    """Send a session's queued user/bot messages to LiveChat, in order."""
    with bind_session(session_id):
        _service("bridge.services.outbound.send_pending_messages")(session_id=session_id)


@shared_task(name="bridge.deliver_session_callbacks")
def deliver_session_callbacks(session_id):
    """Send a session's pending bot callbacks, in order."""
    with bind_session(session_id):
        _service("bridge.services.callbacks.deliver_pending")(session_id=session_id)


@shared_task(name="bridge.run_due_work")
def run_due_work():
    """Pick up retries that are due (messages to LiveChat, callbacks to bots)."""
    for dotted in (
        "bridge.services.sessions.fail_abandoned_starts",
        "bridge.services.outbound.kick_due_messages",
        "bridge.services.callbacks.kick_due_deliveries",
    ):
        try:
            fn = _service(dotted)
        except (ImportError, AttributeError):
            continue
        fn()


@shared_task(name="bridge.renew_customer_tokens")
def renew_customer_tokens():
    try:
        fn = _service("bridge.services.customers.renew_expiring_tokens")
    except (ImportError, AttributeError):
        return
    fn()


@shared_task(name="bridge.purge_expired_transcripts")
def purge_expired_transcripts():
    _service("bridge.services.idempotency.purge_expired_records")()
    _service("bridge.services.webhooks.purge_webhook_receipts")()
    try:
        fn = _service("bridge.services.retention.purge_expired_transcripts")
    except (ImportError, AttributeError):
        return
    fn()


# (seconds between runs, task) — used by celery beat and by the embedded scheduler alike.
PERIODIC = [
    (2.0, run_due_work),
    (900.0, renew_customer_tokens),
    (3600.0, purge_expired_transcripts),
]
