"""What the outbox leans on: customer identities and token renewal, media fetching, event splitting."""
from datetime import timedelta

import pytest
from django.utils import timezone

from bridge.models import EndUser
from bridge.services.customers import renew_expiring_tokens
from bridge.services.media import MediaError, fetch_media
from bridge.services.sessions import opening_events, split_text
from tests.api.conftest import bot, lc, media_server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


def test_tokens_about_to_expire_are_renewed_for_the_same_customer(bot, lc):
    bot.start("open")
    closed = bot.start("closed", user={"external_id": "u-2", "name": "Bob"})
    bot.post(f"sessions/{closed['id']}/stop")
    EndUser.objects.update(customer_token_expires_at=timezone.now() + timedelta(minutes=10))
    before = {u.external_id: (u.livechat_customer_id, u.customer_token) for u in EndUser.objects.all()}

    assert renew_expiring_tokens() == 1  # only the user with an open session

    after = {u.external_id: (u.livechat_customer_id, u.customer_token) for u in EndUser.objects.all()}
    assert after["u-1"][0] == before["u-1"][0] and after["u-1"][1] != before["u-1"][1]
    assert after["u-2"] == before["u-2"]
    assert EndUser.objects.get(external_id="u-1").customer_token_expires_at > timezone.now() + timedelta(hours=7)
    assert len(lc.state.customers) == 2


def test_a_failing_renewal_is_logged_and_skipped(bot, lc):
    bot.start()
    EndUser.objects.update(customer_token_expires_at=timezone.now())
    lc.add_fault("token", count=1, error_type="service_unavailable")
    assert renew_expiring_tokens() == 0


def test_media_redirects_are_followed_and_each_hop_checked(media_server):
    media_server.serve("/final/photo.jpg", b"\xff\xd8jpeg", "image/jpeg")
    url = media_server.serve("/short", b"", status=302, Location="/final/photo.jpg")

    media = fetch_media(url=url)

    assert (media.filename, media.content_type, media.content) == ("photo.jpg", "image/jpeg", b"\xff\xd8jpeg")
    assert media_server.hits == ["/short", "/final/photo.jpg"]


def test_media_filename_comes_from_content_disposition(media_server):
    url = media_server.serve("/download?id=7", b"%PDF", "application/octet-stream",
                             **{"Content-Disposition": 'attachment; filename="invoice 7.pdf"'})
    media = fetch_media(url=url)
    assert media.filename == "invoice 7.pdf" and media.content_type == "application/pdf"


@pytest.mark.parametrize("status, transient", [(404, False), (403, False), (503, True), (429, True)])
def test_media_errors_say_whether_a_retry_may_help(media_server, status, transient):
    url = media_server.serve("/x", b"no", "text/plain", status=status)
    with pytest.raises(MediaError) as caught:
        fetch_media(url=url)
    assert caught.value.transient is transient and f"HTTP {status}" in caught.value.message


def test_an_unreachable_media_host_is_transient():
    with pytest.raises(MediaError) as caught:
        fetch_media(url="http://127.0.0.1:9/nothing-listens-here")
    assert caught.value.transient is True


def test_split_text_never_cuts_a_character_and_prefers_line_breaks():
    text = ("ąę" * 3000 + "\n") * 5
    pieces = split_text(text, max_bytes=16_000)
    assert all(len(p.encode()) <= 16_000 for p in pieces)
    assert "".join(pieces).replace("\n", "") == text.replace("\n", "")
    assert all(not p.startswith("\n") for p in pieces)


def test_opening_events_for_title_only_and_transcript_only():
    assert opening_events(title="T", description="", transcript=[]) == [{"type": "message", "text": "T"}]
    events = opening_events(title="", description="", transcript=[{"author": "bot", "text": "hi"}])
    assert events == [{"type": "message", "text": "Conversation with the bot so far:\nBot: hi"}]
