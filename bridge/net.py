"""The one seam for HTTP to addresses that users give us (bot callbacks, media URLs).

Timeouts always; loopback, link-local, private and other non-public addresses refused unless
CALLBACK_ALLOW_PRIVATE_NETWORKS allows them (SSRF guard). The address checked is the one
connected to: the resolved IP is pinned for the request, so DNS cannot swap it afterwards.
"""
import ipaddress
import socket
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

DEFAULT_TIMEOUT = (3.05, 10)


class UnsafeURL(Exception):
    """The URL is malformed or points at an address we may not call."""


# IPv6 ranges that carry an IPv4 address (or are deprecated) but that Python's `is_global` may
# call public: a host there can reach whatever IPv4 it embeds, so they are never "public" here.
_IPV6_TRANSITION = [
    ipaddress.ip_network(net)
    for net in ("64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "::/96", "::ffff:0:0:0/96", "fec0::/10", "2001::/32")
]


def _is_public(ip: ipaddress._BaseAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        elif any(ip in net for net in _IPV6_TRANSITION):
            return False
    return ip.is_global and not ip.is_multicast


def check_url(url: str, *, allow_private: bool | None = None) -> str:
    """Returns the IP address to connect to, or raises UnsafeURL saying why."""
    if allow_private is None:
        allow_private = settings.CALLBACK_ALLOW_PRIVATE_NETWORKS
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL("only absolute http(s) URLs are allowed")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeURL("the URL's port is not a number") from None
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnsafeURL(f"cannot resolve host {parts.hostname!r}") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not allow_private:
        for ip in addresses:
            if not _is_public(ip):
                raise UnsafeURL(f"{parts.hostname} resolves to a non-public address ({ip})")
    return str(addresses[0])


class _PinnedAdapter(HTTPAdapter):
    """Connects to a checked IP while keeping the URL's host for Host, SNI and certificates."""

    def __init__(self, host, ip, **kwargs):
        self._host, self._ip = host, ip
        super().__init__(**kwargs)

    def send(self, request, **kwargs):
        parts = urlsplit(request.url)
        if parts.hostname == self._host and self._host != self._ip:
            netloc_ip = f"[{self._ip}]" if ":" in self._ip else self._ip
            if parts.port:
                netloc_ip += f":{parts.port}"
            request.url = parts._replace(netloc=netloc_ip).geturl()
            request.headers["Host"] = parts.netloc
            if parts.scheme == "https":
                self.poolmanager.connection_pool_kw["server_hostname"] = self._host
                self.poolmanager.connection_pool_kw["assert_hostname"] = self._host
        return super().send(request, **kwargs)


def safe_request(method: str, url: str, *, timeout=DEFAULT_TIMEOUT, allow_private=None, **kwargs):
    """`requests.request` to a user-given URL, after the SSRF check; redirects are not followed."""
    ip = check_url(url, allow_private=allow_private)
    host = urlsplit(url).hostname
    with requests.Session() as session:
        session.trust_env = False
        adapter = _PinnedAdapter(host, ip)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session.request(method, url, timeout=timeout, allow_redirects=False, **kwargs)
