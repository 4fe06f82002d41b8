"""The overview's numbers, computed by the database: handoffs per day, open sessions, median
time to first agent reply, transfer rate, failed callbacks — and the SVG chart."""
from datetime import timedelta

import pytest
from django.utils import timezone

from bridge.models import Delivery, HitlSession, SessionEvent
from dashboard import selectors
from dashboard.charts import bar_chart

from . import factories


@pytest.fixture
def acme(db):
    tenant = factories.tenant("acme")
    integration, _ = factories.integration(tenant)
    return tenant, integration


def _overview(tenant, days=7):
    (result,) = selectors.overview(tenants=[tenant], days=days)
    return result


def test_handoffs_per_day_and_totals(acme):
    tenant, integration = acme
    now = timezone.now()
    for days_ago, count in [(0, 3), (2, 1), (6, 2), (7, 5)]:  # 7 days ago is outside a 7-day period
        for _ in range(count):
            factories.session(integration, created_at=now - timedelta(days=days_ago))
    o = _overview(tenant)
    assert [n for _, n in o.days] == [2, 0, 0, 0, 1, 0, 3]
    assert o.days[-1][0] == timezone.localdate(now)
    assert o.handoffs == 6


def test_open_sessions_count_whenever_they_started(acme):
    tenant, integration = acme
    old = timezone.now() - timedelta(days=40)
    factories.session(integration, status="waiting", created_at=old)
    factories.session(integration, status="assigned")
    factories.session(integration, status="pending")
    factories.session(integration, status="closed")
    factories.session(integration, status="failed")
    assert _overview(tenant).open_sessions == 3


@pytest.mark.parametrize("waits, median", [
    ([30], 30), ([10, 50, 20], 20), ([10, 20, 30, 400], 25), ([], None),
])
def test_median_time_to_first_agent_reply(acme, waits, median):
    tenant, integration = acme
    for seconds in waits:
        factories.session(integration, first_reply_after=timedelta(seconds=seconds))
    factories.session(integration, status="waiting")  # no reply yet: not counted
    o = _overview(tenant)
    assert o.median_first_reply == (timedelta(seconds=median) if median is not None else None)
    assert o.replied == len(waits)


def test_medians_are_per_tenant(db):
    a, b = factories.tenant("a"), factories.tenant("b")
    ia, _ = factories.integration(a)
    ib, _ = factories.integration(b)
    for seconds in (10, 20, 30):
        factories.session(ia, first_reply_after=timedelta(seconds=seconds))
    for seconds in (100, 300):
        factories.session(ib, first_reply_after=timedelta(seconds=seconds))
    oa, ob = selectors.overview(tenants=[a, b], days=7)
    assert oa.median_first_reply == timedelta(seconds=20)
    assert ob.median_first_reply == timedelta(seconds=200)


def test_transfer_rate_counts_sessions_not_transfers(acme):
    tenant, integration = acme
    sessions = [factories.session(integration) for _ in range(4)]
    for _ in range(3):  # one session transferred three times
        SessionEvent.objects.create(session=sessions[0], kind="transferred")
    SessionEvent.objects.create(session=sessions[1], kind="transferred")
    SessionEvent.objects.create(session=sessions[2], kind="assigned")
    o = _overview(tenant)
    assert o.transferred == 2
    assert o.transfer_rate == 0.5


def test_failed_and_retrying_callbacks(acme):
    tenant, integration = acme
    session = factories.session(integration)
    factories.delivery(session, state=Delivery.State.DEAD)
    factories.delivery(session, state=Delivery.State.DEAD)
    factories.delivery(session, state=Delivery.State.DELIVERED)
    factories.delivery(session, state=Delivery.State.PENDING, attempts=1)
    factories.delivery(session, state=Delivery.State.PENDING, attempts=0)  # never tried: not "retrying"
    o = _overview(tenant)
    assert (o.dead_deliveries, o.retrying_deliveries) == (2, 1)


def test_tenants_never_mix(db):
    a, b = factories.tenant("a"), factories.tenant("b")
    ia, _ = factories.integration(a)
    factories.integration(b)
    factories.session(ia, status="waiting")
    oa, ob = selectors.overview(tenants=[a, b], days=7)
    assert (oa.handoffs, oa.open_sessions) == (1, 1)
    assert (ob.handoffs, ob.open_sessions, ob.transfer_rate) == (0, 0, None)


def test_no_tenants_no_queries(db, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert selectors.overview(tenants=[], days=30) == []


def test_the_chart_is_an_svg_with_a_bar_per_day():
    today = timezone.localdate()
    series = [(today - timedelta(days=2 - i), n) for i, n in enumerate([3, 0, 7])]
    svg = str(bar_chart(series))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<rect") == 3
    assert "7 handoffs on" in svg and 'aria-label="10 handoffs over 3 days"' in svg
    assert "http" not in svg.replace("http://www.w3.org/2000/svg", "")  # nothing fetched


def test_an_empty_chart_says_so():
    today = timezone.localdate()
    assert "No handoffs in this period" in str(bar_chart([(today, 0)]))


def test_chart_labels_are_escaped():
    svg = str(bar_chart([(timezone.localdate(), 1)], label="<script>"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_overview_page_draws_each_tenants_chart(db, client):
    tenant, integration = factories.tenant("acme", "Acme"), None
    integration, _ = factories.integration(tenant)
    factories.session(integration, first_reply_after=timedelta(seconds=90))
    user = factories.staff_user("alice")
    factories.member(user, tenant, "viewer")
    client.force_login(user)
    page = client.get("/admin/?days=7").content.decode()
    assert "<svg" in page and "1 handoffs over 7 days" in page
    assert "1 min 30 s" in page  # the median
    assert "viewer" in page
    assert HitlSession.objects.count() == 1
