"""The console's pages at scale, timed in-process: `python -m bench.console --label 100k`.

Django's test client (the whole middleware stack, templates rendered) logged in as a superuser,
against the benchmark's database; each page once to warm up, then `--repeat` times. For each
page: median and max server time, and the number of SQL queries (CaptureQueriesContext) with
their total time. Also prints a session key of that superuser (`"cookie"`) so the runner can
fetch the same pages through gunicorn. One JSON line on stdout.
"""
import argparse
import hashlib
import json
import os
import statistics
import sys
import time
import uuid
from datetime import timedelta


def session_uuid(g: int) -> str:
    """The id bench.seed gives session g (PostgreSQL's md5(text)::uuid)."""
    return str(uuid.UUID(hashlib.md5(f"session{g}".encode()).hexdigest()))


def pages() -> dict[str, str]:
    from django.utils import timezone

    today = timezone.localdate()
    week_ago = today - timedelta(days=6)
    return {
        "session_list": "/admin/bridge/hitlsession/",
        "session_list_filtered": "/admin/bridge/hitlsession/?tenant=agency-client-03&status=closed",
        "session_list_dates": f"/admin/bridge/hitlsession/?status=closed&created_from={week_ago}&created_to={today}",
        "session_list_agent": "/admin/bridge/hitlsession/?agent=agent7%40example.com",
        "session_list_search": "/admin/bridge/hitlsession/?q=conv-4242",
        "session_detail": f"/admin/bridge/hitlsession/{session_uuid(5)}/change/",
        "session_detail_500_messages": f"/admin/bridge/hitlsession/{session_uuid(3)}/change/",
        "overview": "/admin/",
        "overview_90_days": "/admin/?days=90",
    }


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", action="append", default=[])
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    User = get_user_model()
    user = User.objects.filter(username="bench-admin").first() or User.objects.create_superuser(
        "bench-admin", "bench@example.com", "bench-password-not-used")
    client = Client()
    client.force_login(user)
    result = {}
    for name, url in pages().items():
        if args.only and name not in args.only:
            continue
        client.get(url)  # warm-up: templates, caches
        times, queries, sql_ms, status = [], 0, 0.0, None
        for _ in range(args.repeat):
            with CaptureQueriesContext(connection) as ctx:
                started = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - started) * 1000)
            status = response.status_code
            queries = len(ctx.captured_queries)
            sql_ms = sum(float(q["time"]) for q in ctx.captured_queries) * 1000
        result[name] = {"url": url, "status": status, "ms_p50": round(statistics.median(times), 1),
                        "ms_max": round(max(times), 1), "queries": queries, "sql_ms": round(sql_ms, 1)}
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    print(json.dumps({"pages": result, "cookie": store.session_key}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
