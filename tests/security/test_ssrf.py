"""The SSRF guard (bridge.net): bot callback URLs and the media URLs of image/file messages that
resolve to loopback, link-local, private, unspecified or IPv4-mapped addresses are refused unless
CALLBACK_ALLOW_PRIVATE_NETWORKS; refused *before* any connection is made.

No test here sends traffic beyond loopback: `no_outside_traffic` fails any connect() to another
address, and the non-loopback addresses are only ever given to the check, which refuses them
first. "Allowed" is proven against 127.0.0.1.
"""
import ipaddress
import socket

import pytest

from bridge.models import Delivery, Message
from bridge.net import UnsafeURL, check_url, safe_request
from tests.api.conftest import Bot, MediaServer
from tests.conftest import make_integration
from tests.webhooks.helpers import fixture, make_session, post_webhook
from tests.webhooks.receiver import BotReceiver

REFUSED = {
    "loopback": ["127.0.0.1", "127.8.9.10", "[::1]", "localhost"],
    "loopback, other spellings": ["2130706433", "0x7f000001", "0177.0.0.1", "127.1", "[::ffff:7f00:1]"],
    "link-local": ["169.254.169.254", "169.254.0.1", "[fe80::1]", "[fe80::a00:27ff:fe4e:66a1]"],
    "private 10/8": ["10.0.0.1", "10.255.255.254"],
    "private 172.16/12": ["172.16.0.1", "172.31.255.254"],
    "private 192.168/16": ["192.168.0.1", "192.168.255.254"],
    "unique local fc00::/7": ["[fc00::1]", "[fd12:3456:789a::1]"],
    "unspecified": ["0.0.0.0", "[::]"],
    "IPv4-mapped IPv6": ["[::ffff:127.0.0.1]", "[::ffff:10.0.0.1]", "[::ffff:169.254.169.254]", "[::ffff:192.168.1.1]",
                         "[::ffff:172.16.0.1]", "[::ffff:0.0.0.0]"],
    "other non-public": ["100.64.0.1", "198.18.0.1", "192.0.2.1", "224.0.0.1", "255.255.255.255", "240.0.0.1",
                         "[2001:db8::1]", "[ff02::1]"],
}
REFUSED_HOSTS = [pytest.param(host, id=f"{kind}: {host}") for kind, hosts in REFUSED.items() for host in hosts]
PUBLIC_HOSTS = ["93.184.216.34", "8.8.8.8", "[2606:4700:4700::1111]", "[::ffff:93.184.216.34]"]


@pytest.fixture
def no_outside_traffic(monkeypatch):
    """Any connect() to an address that is not loopback fails the test (it must never happen)."""
    attempts = []
    original = socket.socket.connect

    def connect(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        try:
            loopback = ipaddress.ip_address(str(host).split("%")[0]).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            attempts.append(host)
            raise AssertionError(f"a connection to {host} was attempted")
        return original(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    yield attempts
    assert attempts == [], f"connections beyond loopback were attempted: {attempts}"


# ---- bridge.net.check_url / safe_request -------------------------------------------------------


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_non_public_addresses_are_refused_when_private_networks_are_not_allowed(host, no_outside_traffic):
    for url in (f"http://{host}/hook", f"https://{host}:8443/path?q=1", f"http://user:pw@{host}/"):
        with pytest.raises(UnsafeURL) as refused:
            check_url(url, allow_private=False)
        assert "non-public address" in str(refused.value)


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_the_same_addresses_are_allowed_when_private_networks_are(host):
    address = ipaddress.ip_address(check_url(f"http://{host}/hook", allow_private=True))
    assert not address.is_global or address.is_multicast or (address.version == 6 and address.ipv4_mapped)


@pytest.mark.parametrize("host", PUBLIC_HOSTS)
def test_public_addresses_are_allowed_either_way(host):
    for allow in (False, True):
        assert ipaddress.ip_address(check_url(f"https://{host}/hook", allow_private=allow))


def test_the_setting_decides_when_the_caller_does_not(settings):
    settings.CALLBACK_ALLOW_PRIVATE_NETWORKS = False
    with pytest.raises(UnsafeURL):
        check_url("http://10.0.0.1/")
    settings.CALLBACK_ALLOW_PRIVATE_NETWORKS = True
    assert check_url("http://10.0.0.1/") == "10.0.0.1"


@pytest.mark.parametrize("url", [
    "file:///etc/passwd", "gopher://127.0.0.1:25/", "ftp://10.0.0.1/", "dict://127.0.0.1:11211/", "//10.0.0.1/x",
    "http:///nohost", "http://10.0.0.1:notaport/", "javascript:alert(1)", "",
])
def test_only_absolute_http_urls_are_accepted(url):
    for allow in (False, True):
        with pytest.raises(UnsafeURL):
            check_url(url, allow_private=allow)


@pytest.mark.parametrize("host", ["10.0.0.1", "169.254.169.254", "[fd00::1]", "[::ffff:10.0.0.1]", "0.0.0.0",
                                  "127.0.0.1", "[fe80::1]"])
def test_safe_request_refuses_before_connecting(host, no_outside_traffic):
    with pytest.raises(UnsafeURL):
        safe_request("POST", f"http://{host}/hook", data=b"{}", allow_private=False)


def test_safe_request_reaches_loopback_only_when_allowed(no_outside_traffic):
    receiver = BotReceiver().start()
    try:
        with pytest.raises(UnsafeURL):
            safe_request("POST", receiver.url, data=b"{}", allow_private=False)
        assert receiver.received() == []
        response = safe_request("POST", receiver.url, data=b"{}", allow_private=True)
        assert response.status_code == 200 and len(receiver.received()) == 1
    finally:
        receiver.stop()


def test_a_name_that_resolves_to_a_private_address_is_refused_and_the_checked_address_is_the_one_used(
    monkeypatch, no_outside_traffic
):
    """DNS is asked once; a name pointing inside is refused, and an allowed one is pinned."""
    answers = {"inside.example.test": "10.1.2.3", "loop.example.test": "127.0.0.1"}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(UnsafeURL, match="non-public address"):
        check_url("https://inside.example.test/hook", allow_private=False)
    receiver = BotReceiver().start()
    try:
        port = receiver.url.split(":")[2].split("/")[0]
        response = safe_request("POST", f"http://loop.example.test:{port}/hitl/callback", data=b"{}",
                                allow_private=True)
        assert response.status_code == 200
        assert receiver.received()[0].headers["host"] == f"loop.example.test:{port}"
    finally:
        receiver.stop()


@pytest.mark.parametrize("host", ["[64:ff9b::a00:1]", "[64:ff9b:1::a00:1]", "[2002:a00:1::]", "[::a00:1]",
                                  "[::ffff:0:a00:1]", "[fec0::1]", "[2001:0:a00:1::]"])
def test_ipv6_transition_addresses_that_embed_a_private_ipv4_are_refused(host):
    with pytest.raises(UnsafeURL):
        check_url(f"http://{host}/hook", allow_private=False)


# ---- through the API: image and file messages --------------------------------------------------

MEDIA_HOSTS = ["10.0.0.1", "169.254.169.254", "172.16.5.4", "192.168.1.10", "[fd00::1]", "[fe80::1]", "0.0.0.0",
               "[::ffff:10.0.0.1]", "127.0.0.1", "[::1]"]


@pytest.fixture
def lc_bot(livechat_settings, sandbox, sandbox_org, settings):
    settings.LIVECHAT_RETRY_SCHEDULE = [0, 0, 0]
    return Bot(make_integration(
        "acme", "main", client_id=sandbox_org.client_id, organization_id=sandbox_org.organization_id,
        agent_token=sandbox_org.agent_token, group_id=5,
    ))


@pytest.fixture
def media_server():
    server = MediaServer()
    yield server
    server.stop()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["image", "file"])
@pytest.mark.parametrize("host", MEDIA_HOSTS)
def test_a_media_url_inside_the_network_fails_the_message_and_sends_nothing(
    lc_bot, sandbox, settings, host, kind, no_outside_traffic
):
    settings.CALLBACK_ALLOW_PRIVATE_NETWORKS = False
    session = lc_bot.start()
    calls_before = len(sandbox.requests())

    response = lc_bot.post(f"sessions/{session['id']}/messages", {"type": kind, "url": f"http://{host}/cat.png"})

    assert response.status_code == 202, response.json()
    message = Message.objects.get(pk=response.json()["id"])
    assert message.delivery_state == "failed"
    assert message.last_error.startswith("media URL refused:") and "non-public address" in message.last_error
    assert [r for r in sandbox.requests()[calls_before:] if r.get("action") in ("upload_file", "send_event")] == []
    listed = lc_bot.get(f"sessions/{session['id']}/messages").json()["results"]
    assert [(m["status"], m["error"]) for m in listed if m["id"] == message.pk] == [("failed", message.last_error)]


@pytest.mark.django_db(transaction=True)
def test_a_media_url_on_loopback_is_fetched_and_sent_when_private_networks_are_allowed(
    lc_bot, sandbox, settings, media_server, no_outside_traffic
):
    settings.CALLBACK_ALLOW_PRIVATE_NETWORKS = True
    session = lc_bot.start()
    url = media_server.serve("/cat.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png")

    response = lc_bot.post(f"sessions/{session['id']}/messages", {"type": "image", "url": url})

    message = Message.objects.get(pk=response.json()["id"])
    assert message.delivery_state == "sent", message.last_error
    assert media_server.hits == ["/cat.png"]
    assert {"upload_file", "send_event"} <= {r.get("action") for r in sandbox.requests()}


# ---- through callbacks ----------------------------------------------------------------------


@pytest.fixture
def agent_message(client, django_capture_on_commit_callbacks):
    """Posts an agent's message webhook for a session of `integration`; the callback is tried after commit."""

    def post(integration):
        make_session(integration)
        with django_capture_on_commit_callbacks(execute=True):
            response = post_webhook(client, integration, fixture("incoming_event_message", secret="whs-ssrf-0001"))
        assert response.status_code == 200, response.content
        return Delivery.objects.get(integration=integration)

    return post


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["10.0.0.1", "169.254.169.254", "[fd00::1]", "[::ffff:192.168.0.1]", "0.0.0.0",
                                  "127.0.0.1", "[::1]", "[fe80::1]"])
def test_a_callback_url_inside_the_network_is_never_called_and_ends_dead_lettered(
    agent_message, settings, host, no_outside_traffic
):
    settings.CALLBACK_ALLOW_PRIVATE_NETWORKS = False
    settings.CALLBACK_RETRY_SCHEDULE = []  # no retries: the first refusal is final
    integration = make_integration(webhook_secret="whs-ssrf-0001", callback_url=f"http://{host}/bot/hook").integration

    delivery = agent_message(integration)

    assert delivery.state == "dead" and delivery.dead_lettered
    assert delivery.last_error.startswith("refused URL:") and "non-public address" in delivery.last_error
    assert delivery.last_status is None
    [attempt] = delivery.attempt_log.all()
    assert attempt.status_code is None and attempt.error == delivery.last_error


@pytest.mark.django_db
def test_a_refused_callback_is_retried_on_schedule_then_dead_lettered(agent_message, settings, no_outside_traffic):
    from bridge.services.callbacks import deliver_pending

    settings.CALLBACK_ALLOW_PRIVATE_NETWORKS = False
    settings.CALLBACK_RETRY_SCHEDULE = [0, 0]
    integration = make_integration(webhook_secret="whs-ssrf-0001", callback_url="http://10.9.8.7/hook").integration
    delivery = agent_message(integration)
    assert delivery.state == "pending" and "non-public address" in delivery.last_error
    for _ in range(3):
        deliver_pending(session_id=delivery.session_id)
    delivery.refresh_from_db()
    assert delivery.state == "dead" and delivery.attempts == 3
    assert "non-public address" in delivery.last_error


@pytest.mark.django_db
def test_a_loopback_callback_is_delivered_when_private_networks_are_allowed(
    agent_message, settings, no_outside_traffic
):
    settings.CALLBACK_ALLOW_PRIVATE_NETWORKS = True
    receiver = BotReceiver().start()
    try:
        integration = make_integration(webhook_secret="whs-ssrf-0001", callback_url=receiver.url).integration
        delivery = agent_message(integration)
        assert delivery.state == "delivered", delivery.last_error
        assert [r.json["type"] for r in receiver.received()] == ["agent.message"]
    finally:
        receiver.stop()


def test_the_callers_of_user_given_urls_go_through_the_guard():
    """Callbacks and media fetches call bridge.net.safe_request, never requests directly."""
    import inspect

    from bridge.services import callbacks, media

    for module in (callbacks, media):
        source = inspect.getsource(module)
        assert "requests.get(" not in source and "requests.post(" not in source and "requests.request(" not in source
        assert "safe_request(" in source
