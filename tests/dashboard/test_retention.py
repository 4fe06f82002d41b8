"""Transcript retention: messages of ended sessions older than the tenant's retention go; the
sessions and their audit events stay, so counts and timelines do not change."""
from datetime import timedelta

import pytest
from django.utils import timezone

from bridge import tasks
from bridge.models import Delivery, HitlSession, Message, SessionEvent
from bridge.services.retention import purge_expired_transcripts
from dashboard import selectors

from . import factories


@pytest.fixture
def setup(db):
    now = timezone.now()
    keep30 = factories.tenant("keep30", transcript_retention_days=30)
    forever = factories.tenant("forever")
    i30, _ = factories.integration(keep30)
    iforever, _ = factories.integration(forever)

    def closed(integration, days_ago):
        s = factories.session(integration, status="closed", created_at=now - timedelta(days=days_ago, minutes=30))
        HitlSession.objects.filter(pk=s.pk).update(closed_at=now - timedelta(days=days_ago))
        factories.transcript(s)
        factories.audit_events(s)
        factories.delivery(s, state=Delivery.State.DELIVERED)
        return s

    return {
        "now": now,
        "tenant": keep30,
        "old": closed(i30, 31),
        "recent": closed(i30, 29),
        "old_but_open": factories.session(i30, status="assigned", created_at=now - timedelta(days=90)),
        "old_other_tenant": closed(iforever, 400),
    }


def test_purges_only_expired_transcripts(setup):
    factories.transcript(setup["old_but_open"])
    events_before = SessionEvent.objects.count()
    sessions_before = HitlSession.objects.count()

    assert purge_expired_transcripts(now=setup["now"]) == 1

    old = setup["old"]
    old.refresh_from_db()
    assert old.transcript_purged_at == setup["now"]
    assert not Message.objects.filter(session=old).exists()
    for key in ("recent", "old_but_open", "old_other_tenant"):
        setup[key].refresh_from_db()
        assert setup[key].transcript_purged_at is None
        assert Message.objects.filter(session=setup[key]).exists()
    assert SessionEvent.objects.count() == events_before
    assert HitlSession.objects.count() == sessions_before


def test_message_text_also_leaves_finished_callbacks(setup):
    old = setup["old"]
    delivery = old.deliveries.get()
    delivery.payload["data"]["message"] = {"id": 1, "text": "my card number is 4111", "url": "https://x/y"}
    delivery.save()
    purge_expired_transcripts(now=setup["now"])
    delivery.refresh_from_db()
    assert delivery.payload["id"] == delivery.event_id
    assert delivery.payload["data"]["message"] == {"id": 1, "text": "", "url": "", "purged": True}
    assert "4111" not in str(delivery.payload)


def test_purging_twice_changes_nothing(setup):
    purge_expired_transcripts(now=setup["now"])
    assert purge_expired_transcripts(now=setup["now"]) == 0


def test_shortening_the_retention_purges_more(setup):
    tenant = setup["tenant"]
    tenant.transcript_retention_days = 7
    tenant.save()
    assert purge_expired_transcripts(now=setup["now"]) == 2


def test_works_in_batches(setup):
    tenant = setup["tenant"]
    integration = setup["old"].integration
    for _ in range(5):
        s = factories.session(integration, status="failed", created_at=setup["now"] - timedelta(days=60))
        factories.transcript(s)
    assert purge_expired_transcripts(now=setup["now"], batch_size=2) == 6
    assert not Message.objects.filter(session__integration__tenant=tenant,
                                      session__created_at__lt=setup["now"] - timedelta(days=31)).exclude(
        session__status__in=HitlSession.OPEN_STATUSES).exists()


def test_the_hourly_task_runs_it(setup):
    tasks.purge_expired_transcripts.run()
    setup["old"].refresh_from_db()
    assert setup["old"].transcript_purged_at is not None


def test_the_session_page_says_the_transcript_was_purged(setup, client):
    purge_expired_transcripts(now=setup["now"])
    user = factories.staff_user("alice")
    factories.member(user, setup["tenant"], "viewer")
    client.force_login(user)
    page = client.get(f"/admin/bridge/hitlsession/{setup['old'].pk}/change/").content.decode()
    assert "The transcript was purged" in page and "retention of 30 days" in page
    assert "Transferred" in page  # the timeline stays


def test_overview_counts_stay_after_a_purge(setup):
    tenant = setup["tenant"]
    before = selectors.overview(tenants=[tenant], days=90)[0]
    purge_expired_transcripts(now=setup["now"])
    after = selectors.overview(tenants=[tenant], days=90)[0]
    assert (before.handoffs, before.transferred, before.open_sessions) == (
        after.handoffs, after.transferred, after.open_sessions)
