"""When background work runs. The outbox rows are the truth; this only decides when to look.

- celery: `task.delay()` after commit; celery beat runs the periodic work.
- thread (embedded, `make run`): a small in-process pool after commit, and a scheduler thread.
- inline (tests): right after commit, in the caller's thread.
"""
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from django.conf import settings
from django.db import close_old_connections, transaction

log = logging.getLogger(__name__)

_executor = None
_executor_lock = threading.Lock()


def enqueue(task, *args):
    """Run a Celery task with `args` once the current transaction commits."""
    transaction.on_commit(partial(_send, task, args))


def _send(task, args):
    mode = settings.TASK_MODE
    if mode == "celery":
        try:
            task.delay(*args)
        except Exception:
            # The row is committed; the periodic sweep will pick it up when the broker is back.
            log.exception("could not queue %s; the periodic sweep will retry", task.name)
    elif mode == "inline":
        _run(task, args)
    else:
        _pool().submit(_run, task, args)


def _pool():
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="hitl-task")
        return _executor


def _run(task, args):
    try:
        task.run(*args)
    except Exception:
        log.exception("background task %s failed", task.name)
    finally:
        if settings.TASK_MODE == "thread":
            close_old_connections()


def start_embedded_scheduler(tick_seconds=1.0):
    """Run the periodic work in a daemon thread: what celery beat does when there is no broker."""
    from .tasks import PERIODIC

    def loop():
        last_run = {}
        while True:
            now = time.monotonic()
            for every, task in PERIODIC:
                if now - last_run.get(task.name, -every) >= every:
                    last_run[task.name] = now
                    _run(task, ())
            close_old_connections()
            time.sleep(tick_seconds)

    thread = threading.Thread(target=loop, name="hitl-scheduler", daemon=True)
    thread.start()
    log.info("embedded scheduler started")
    return thread
