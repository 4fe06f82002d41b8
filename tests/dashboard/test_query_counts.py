"""The session list, a session's page and the overview cost the same number of queries with 10
and with 1,000 sessions (and a long or short transcript): nothing is queried per row."""
import pytest
from django.db import connection
from django.urls import reverse

from bridge.models import Delivery, HitlSession

from . import factories

SIZES = [10, 1000]

# Per request, whatever the size: session, user, the user's memberships, Django's permission
# cache (2, for the sidebar's auth app), then the page's own reads:
SESSION_LIST_QUERIES = 10  # tenant, integration and agent filter choices, count, one page of rows
SESSION_DETAIL_QUERIES = 10  # the session (+integration, tenant, user), messages, events, callbacks, attempts
# tenants, per-day counts, open, median, transfers, callbacks; SQLite has no percentile function,
# so its median is a count plus one query per tenant with replies (see selectors._median_first_reply).
OVERVIEW_QUERIES = 11 if connection.vendor == "postgresql" else 12


@pytest.fixture
def alice_client(world, client):
    client.force_login(world.alice)
    return client


def grow(world, n):
    factories.bulk_sessions(world.a.integration, n)


@pytest.mark.parametrize("n", SIZES)
def test_session_list(world, alice_client, django_assert_num_queries, n):
    grow(world, n)
    url = reverse("admin:bridge_hitlsession_changelist")
    alice_client.get(url)  # warm caches that are per process, not per request
    with django_assert_num_queries(SESSION_LIST_QUERIES):
        response = alice_client.get(url + "?status=closed&q=bulk")
    assert response.status_code == 200


@pytest.mark.parametrize("n", SIZES)
def test_session_detail(world, alice_client, django_assert_num_queries, n):
    grow(world, n)
    session = world.a.session
    factories.transcript(session, messages=n)
    for _ in range(n // 100):
        factories.delivery(session, state=Delivery.State.DEAD, attempts=3)
    url = reverse("admin:bridge_hitlsession_change", args=[session.pk])
    alice_client.get(url)
    with django_assert_num_queries(SESSION_DETAIL_QUERIES):
        response = alice_client.get(url)
    assert response.status_code == 200
    assert response.content.count(b'class="msg ') >= n


@pytest.mark.parametrize("n", SIZES)
def test_overview(world, alice_client, django_assert_num_queries, n):
    grow(world, n)
    url = reverse("console-overview")
    alice_client.get(url)
    with django_assert_num_queries(OVERVIEW_QUERIES):
        response = alice_client.get(url)
    assert response.status_code == 200
    assert HitlSession.objects.filter(integration=world.a.integration).count() == n + 1
