"""The overview, the session list and the CSV export stay fast at 100k sessions.

The bounds are generous (CI shares two cores with other suites); the point is that nothing grows
with the number of rows in Python: the aggregates run in the database and the export streams.
The timings are printed (`-s`). CONSOLE_SCALE_SESSIONS changes the size."""
import os
import time

import pytest
from django.db import connection
from django.urls import reverse

from bridge.models import HitlSession

from . import factories

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

N = int(os.environ.get("CONSOLE_SCALE_SESSIONS", "100000"))


@pytest.fixture
def big(world):
    started = time.monotonic()
    factories.bulk_sessions(world.a.integration, N, days=90)
    print(f"\n{N} sessions made in {time.monotonic() - started:.1f} s")
    if connection.vendor == "postgresql":
        # In production autovacuum analyzes a table after bulk changes; rows inserted inside this
        # test's transaction are invisible to it, so without statistics the planner assumes one
        # row per table. SQLite is measured without ANALYZE: the worst case it runs in.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return world


def _timed(client, url):
    started = time.monotonic()
    response = client.get(url)
    if response.streaming:
        size = sum(len(chunk) for chunk in response.streaming_content)
    else:
        size = len(response.content)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    return elapsed, size


def test_console_at_scale(big, alice):
    assert HitlSession.objects.count() >= N
    timings = {}
    for name, url, bound in [
        ("overview 30 days", reverse("console-overview"), 3.0),
        ("overview 90 days", reverse("console-overview") + "?days=90", 4.0),
        ("session list", reverse("admin:bridge_hitlsession_changelist"), 4.0),
        ("session list, closed, searched", reverse("admin:bridge_hitlsession_changelist") + "?status=closed&q=bulk-", 5.0),
        ("session detail", reverse("admin:bridge_hitlsession_change", args=[big.a.session.pk]), 2.0),
        ("CSV of all sessions (streamed)", reverse("admin:bridge_hitlsession_export"), 60.0),
    ]:
        elapsed, size = _timed(alice, url)
        timings[name] = elapsed
        print(f"{name}: {elapsed * 1000:.0f} ms, {size / 1024:.0f} KiB")
        assert elapsed < bound, (name, elapsed)
