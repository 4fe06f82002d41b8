"""gunicorn settings for the web process:

    gunicorn -c hitl_project/gunicorn.conf.py hitl_project.wsgi:application

Measured with `make bench` (docs/performance.md). Anything here can be overridden on the command
line (`--bind`, …) or in GUNICORN_CMD_ARGS; WEB_CONCURRENCY sets the number of worker processes.
"""
import multiprocessing
import os

# Sync workers: a request holds its worker while it waits for PostgreSQL, Redis or (when a
# handoff starts) LiveChat, so more workers than CPUs keep the CPUs busy: gunicorn's own
# 2 × CPUs + 1. Each worker is ~100 MB (docs/performance.md).
workers = int(os.environ.get("WEB_CONCURRENCY", 2 * multiprocessing.cpu_count() + 1))
worker_class = "sync"

# Starting a handoff waits up to ~10 s for LiveChat (README: --timeout 30 or more).
timeout = 30
graceful_timeout = 15

# A worker is replaced after this many requests (jittered so they do not all restart at once):
# whatever a long-lived process accumulates is given back.
max_requests = 5000
max_requests_jitter = 500

# The app is imported once, in the master, and every worker is a fork of it: a replaced worker
# starts serving at once instead of importing Django for ~1 s on a CPU the others need (under
# `make bench`'s webhook load those imports were the p99), and the workers share those pages.
# Nothing connects at import time (database, Redis and the broker connect on first use in each
# worker).
preload_app = True

# The workers' heartbeat files on tmpfs: a slow or full disk must not get them killed.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None


def when_ready(server):
    # What each worker would otherwise do on its first request: import every URL pattern and
    # view, and set up the Celery app its first queued task needs (no connection is made here).
    from django.urls import get_resolver

    from hitl_project.celery import app

    get_resolver().reverse_dict  # noqa: B018 (populates the resolver)
    app.finalize(auto=True)
    import bridge.tasks  # noqa: F401

    # Everything loaded so far lives as long as the process: keep it out of the workers' garbage
    # collections, which would otherwise write to (and so copy) every page shared with the master.
    import gc

    gc.collect()
    gc.freeze()
