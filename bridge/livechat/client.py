"""The LiveChat client: the only code that knows LiveChat URLs, headers and payloads.

Three API clients share one transport (`_Transport.post`): explicit timeouts, JSON, typed errors
(`errors.classify`), and a log line per call (method, status, duration) that never carries a
token, secret, cookie or the Authorization header.

- `CustomerClient` speaks the Customer Chat API as one end user (a LiveChat customer). Its token
  comes from the accounts token endpoint and lives in a `CustomerIdentity` that the service layer
  stores encrypted per end user; the client renews it in place and sets `identity.changed`.
- `AgentClient` and `ConfigurationClient` use the integration's personal access token (Basic).

Wire facts: /work/shared/livechat/WIRE.md.
"""
from __future__ import annotations

import http.cookiejar
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, TypeVar

import requests

from bridge import metrics

from .errors import LiveChatAuthError, LiveChatTransientError, classify

logger = logging.getLogger("bridge.livechat")

T = TypeVar("T")

# Renew a customer token this long before it expires, so a call never races the expiry.
TOKEN_RENEW_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True)
class LiveChatConfig:
    """Everything needed to talk to LiveChat for one integration. Secrets never show in repr."""

    api_url: str
    accounts_url: str
    api_version: str
    client_id: str
    organization_id: str
    agent_token: str = field(repr=False)  # Base64 "account_id:PAT", sent as `Authorization: Basic …`
    redirect_uri: str = ""
    agent_oauth_token: str | None = field(default=None, repr=False)  # enables the agent_token grant
    timeout: float = 10.0

    @classmethod
    def from_settings(cls, **kw: Any) -> "LiveChatConfig":
        """A config whose api_url/accounts_url/api_version come from Django settings
        (LIVECHAT_API_URL, LIVECHAT_ACCOUNTS_URL, LIVECHAT_API_VERSION) unless given in `kw`."""
        from django.conf import settings  # here, so the client and the sandbox run without Django

        kw.setdefault("api_url", settings.LIVECHAT_API_URL)
        kw.setdefault("accounts_url", settings.LIVECHAT_ACCOUNTS_URL)
        kw.setdefault("api_version", settings.LIVECHAT_API_VERSION)
        return cls(**kw)

    def action_url(self, api: str, method: str) -> str:
        """`{api_url}/v{version}/{api}/action/{method}`, api in customer/agent/configuration."""
        return f"{str(self.api_url).rstrip('/')}/v{self.api_version}/{api}/action/{method}"

    @property
    def token_url(self) -> str:
        return f"{str(self.accounts_url).rstrip('/')}/v2/customer/token"


@dataclass
class CustomerIdentity:
    """One end user's LiveChat customer: id, token and the cookies that renew the same customer.

    The client mutates it in place when it mints or renews a token and sets `changed = True`;
    the caller persists it (encrypted) and may reset `changed`.
    """

    customer_id: str | None = None
    access_token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None  # aware, UTC
    cookies: dict[str, str] = field(default_factory=dict, repr=False)  # __lc_cid / __lc_cst
    changed: bool = field(default=False, compare=False)

    def token_is_fresh(self, now: datetime | None = None) -> bool:
        """True when the token exists and outlives TOKEN_RENEW_MARGIN."""
        if not self.access_token or self.expires_at is None:
            return False
        return self.expires_at - TOKEN_RENEW_MARGIN > (now or datetime.now(timezone.utc))


class _RefuseAllCookies(http.cookiejar.DefaultCookiePolicy):
    """A cookie policy that never stores nor returns a cookie."""

    def set_ok(self, cookie, request):
        return False

    def return_ok(self, cookie, request):
        return False


_sessions: dict[str, requests.Session] = {}
_sessions_lock = threading.Lock()


def http_session_for(key: str) -> requests.Session:
    """One pooled `requests.Session` per integration key (connection reuse).

    Its cookie jar refuses every cookie, so two end users can never become one LiveChat
    customer through a shared jar; customer cookies travel explicitly per request.
    """
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None:
            session = _sessions[key] = requests.Session()
            session.cookies.set_policy(_RefuseAllCookies())
        return session


def _cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def _set_cookies(response: requests.Response) -> dict[str, str | None]:
    """name → value from the raw Set-Cookie headers (read by hand: the jar is off, and a cookie
    domain like .livechat.com must not make us drop it). None means "forget this cookie"."""
    headers = getattr(response.raw, "headers", None)
    values = headers.getlist("Set-Cookie") if hasattr(headers, "getlist") else []
    if not values and response.headers.get("Set-Cookie"):
        values = [response.headers["Set-Cookie"]]
    found: dict[str, str | None] = {}
    for raw in values:
        pair, _, attributes = raw.partition(";")
        name, sep, value = pair.partition("=")
        name, value = name.strip(), value.strip().strip('"')
        if sep and name:
            expired = "max-age=0" in attributes.replace(" ", "").lower()
            found[name] = None if (expired or not value) else value
    return found


class _Transport:
    """One POST to LiveChat: timeout, JSON, typed errors, a safe log line."""

    def __init__(self, config: LiveChatConfig, session: requests.Session | None):
        self.config = config
        self.session = session or http_session_for(f"{config.organization_id}:{config.client_id}")

    def post(self, url: str, method: str, *, headers: dict[str, str], json: Any = None,
             params: dict | None = None, files: dict | None = None) -> tuple[Any, requests.Response]:
        started = time.monotonic()
        try:
            response = self.session.post(
                url, headers={"Accept": "application/json", **headers}, json=json, params=params,
                files=files, timeout=self.config.timeout, allow_redirects=False,
            )
        except requests.Timeout:
            self._log(method, None, started, "timeout")
            raise LiveChatTransientError("timeout", f"LiveChat {method} timed out after {self.config.timeout:g} s") from None
        except requests.RequestException as exc:
            # The exception text can echo the URL or headers: keep only its class name.
            self._log(method, None, started, "connection")
            raise LiveChatTransientError("connection", f"LiveChat {method}: {type(exc).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or body is None:
            error = classify(response.status_code, body, headers=response.headers)
            self._log(method, response.status_code, started, error.type)
            raise error
        self._log(method, response.status_code, started, None)
        return body, response

    def _log(self, method: str, status: int | None, started: float, error: str | None) -> None:
        duration_ms = round((time.monotonic() - started) * 1000)
        metrics.livechat_call(method, error)
        logger.log(
            logging.INFO if error is None else logging.WARNING,
            "livechat %s status=%s duration_ms=%d%s", method, status, duration_ms, f" error={error}" if error else "",
            extra={"livechat_method": method, "status": status, "duration_ms": duration_ms},
        )


def _chat_ref(chat_id: str, thread_id: str | None) -> dict:
    return {"chat_id": chat_id, **({"thread_id": thread_id} if thread_id else {})}


class CustomerClient:
    """The Customer Chat API as one end user. Every action ensures a fresh token first and, on
    an authentication error, renews the token once and retries once (never loops)."""

    def __init__(self, config: LiveChatConfig, identity: CustomerIdentity, *, session: requests.Session | None = None):
        self.config = config
        self.identity = identity
        self._transport = _Transport(config, session)

    def ensure_token(self) -> None:
        """Mint a token when missing or expiring within 5 minutes: cookie grant (the identity's
        cookies renew the same customer) or, with config.agent_oauth_token, the agent_token grant."""
        if not self.identity.token_is_fresh():
            self.renew_token()

    def renew_token(self) -> None:
        """Mint a new token now and store it (and any new cookies) in the identity."""
        config, identity = self.config, self.identity
        headers: dict[str, str] = {}
        if config.agent_oauth_token:
            body = {"grant_type": "agent_token", "client_id": config.client_id, "response_type": "token",
                    "organization_id": config.organization_id}
            if identity.customer_id:
                body["entity_id"] = identity.customer_id
            headers["Authorization"] = f"Bearer {config.agent_oauth_token}"
        else:
            body = {"grant_type": "cookie", "client_id": config.client_id, "organization_id": config.organization_id,
                    "redirect_uri": config.redirect_uri, "response_type": "token"}
            if identity.cookies:
                headers["Cookie"] = _cookie_header(identity.cookies)
        data, response = self._transport.post(config.token_url, "token", headers=headers, json=body)
        token, customer_id = data.get("access_token"), data.get("entity_id")
        if not token or not customer_id:
            raise LiveChatTransientError("http", "token answer without access_token/entity_id", status=response.status_code)
        if identity.customer_id and identity.customer_id != customer_id:
            # The cookies no longer named our customer, so LiveChat made a new one: say so.
            logger.warning("livechat token: LiveChat returned a different customer (cookies expired or rejected)")
        identity.access_token = token
        identity.customer_id = customer_id
        identity.expires_at = datetime.now(timezone.utc) + timedelta(seconds=float(data.get("expires_in") or 0))
        for name, value in _set_cookies(response).items():
            if value is None:
                identity.cookies.pop(name, None)
            else:
                identity.cookies[name] = value
        identity.changed = True

    def _call(self, method: str, body: dict | None = None, *, files: dict | None = None) -> Any:
        self.ensure_token()
        try:
            return self._post(method, body, files)
        except LiveChatAuthError:
            # The token may have been revoked or expired early: renew once, retry once, never loop.
            self.renew_token()
            return self._post(method, body, files)

    def _post(self, method: str, body: dict | None, files: dict | None) -> Any:
        data, _ = self._transport.post(
            self.config.action_url("customer", method), method,
            headers={"Authorization": f"Bearer {self.identity.access_token}"},
            params={"organization_id": self.config.organization_id},
            json=None if files else (body or {}), files=files,
        )
        return data

    def start_chat(self, *, group_id: int, events: list[dict], properties: dict | None = None,
                   active: bool = True, continuous: bool = True) -> dict:
        """Open a chat in `group_id` with `events` as its first thread → {chat_id, thread_id, event_ids}."""
        chat: dict[str, Any] = {"access": {"group_ids": [group_id]}, "properties": properties or {}}
        if events:
            chat["thread"] = {"events": events}
        data = self._call("start_chat", {"chat": chat, "active": active, "continuous": continuous})
        return {"chat_id": data["chat_id"], "thread_id": data.get("thread_id"), "event_ids": data.get("event_ids", [])}

    def resume_chat(self, *, chat_id: str, group_id: int, events: list[dict]) -> dict:
        """Start a new thread in an inactive chat → {thread_id, event_ids?}."""
        chat: dict[str, Any] = {"id": chat_id, "access": {"group_ids": [group_id]}}
        if events:
            chat["thread"] = {"events": events}
        data = self._call("resume_chat", {"chat": chat, "active": True, "continuous": True})
        return {"thread_id": data.get("thread_id"), "event_ids": data.get("event_ids", [])}

    def send_event(self, *, chat_id: str, event: dict, attach_to_last_thread: bool = False) -> str:
        """Post one event (message, file, …) → its event id."""
        body: dict[str, Any] = {"chat_id": chat_id, "event": event}
        if attach_to_last_thread:
            body["attach_to_last_thread"] = True
        return self._call("send_event", body)["event_id"]

    def deactivate_chat(self, *, chat_id: str) -> None:
        """Close the chat's active thread as the customer."""
        self._call("deactivate_chat", {"id": chat_id})

    def get_chat(self, *, chat_id: str, thread_id: str | None = None) -> dict:
        """The chat with one thread (the latest unless `thread_id`) and its users."""
        return self._call("get_chat", _chat_ref(chat_id, thread_id))

    def update_customer(self, *, name: str | None = None, email: str | None = None, avatar: str | None = None,
                        session_fields: list[dict] | None = None) -> None:
        """Set the customer's name/email/avatar/session fields (at least one)."""
        given = {"name": name, "email": email, "avatar": avatar, "session_fields": session_fields}
        body = {key: value for key, value in given.items() if value is not None}
        if not body:
            raise ValueError("update_customer needs at least one of name, email, avatar, session_fields")
        self._call("update_customer", body)

    def get_customer(self) -> dict:
        """The customer as LiveChat sees it: {id, type, name, email, …}."""
        return self._call("get_customer", {})

    def upload_file(self, *, filename: str, content: bytes, content_type: str) -> str:
        """Upload a file (≤10 MB) → its CDN URL, to send as a `file` event."""
        return self._call("upload_file", files={"file": (filename, content, content_type)})["url"]


class _PatClient:
    """Shared by the Agent and Configuration clients: Basic PAT, one POST per method."""

    def __init__(self, config: LiveChatConfig, *, session: requests.Session | None = None):
        self.config = config
        self._transport = _Transport(config, session)

    def _call(self, api: str, method: str, body: dict) -> Any:
        data, _ = self._transport.post(
            self.config.action_url(api, method), method,
            headers={"Authorization": f"Basic {self.config.agent_token}"}, json=body,
        )
        return data

    # Groups are Configuration API methods in LiveChat; both PAT clients offer them.
    def list_groups(self) -> list[dict]:
        """Groups of the organization: [{id, name, …}]."""
        return self._call("configuration", "list_groups", {})

    def get_group(self, *, group_id: int) -> dict:
        """One group; LiveChatPermanentError (group_not_found) when it does not exist."""
        return self._call("configuration", "get_group", {"id": group_id})


class AgentClient(_PatClient):
    """The Agent Chat API with the integration's personal access token (Basic)."""

    def transfer_chat(self, *, chat_id: str, group_ids: list[int] | None = None,
                      agent_ids: list[str] | None = None) -> None:
        """Transfer to groups or agents (one kind), ignoring availability and requester presence."""
        if bool(group_ids) == bool(agent_ids):
            raise ValueError("transfer_chat needs either group_ids or agent_ids")
        target = {"type": "group", "ids": list(group_ids)} if group_ids else {"type": "agent", "ids": list(agent_ids)}
        self._call("agent", "transfer_chat", {"id": chat_id, "target": target, "ignore_agents_availability": True,
                                              "ignore_requester_presence": True})

    def deactivate_chat(self, *, chat_id: str) -> None:
        self._call("agent", "deactivate_chat", {"id": chat_id, "ignore_requester_presence": True})

    def get_chat(self, *, chat_id: str, thread_id: str | None = None) -> dict:
        return self._call("agent", "get_chat", _chat_ref(chat_id, thread_id))

    def list_chats(self, *, filters: dict | None = None, limit: int = 10) -> dict:
        """{chats_summary: [...], found_chats, next_page_id?}."""
        return self._call("agent", "list_chats", {"filters": filters or {}, "limit": limit})

    def send_event(self, *, chat_id: str, event: dict) -> str:
        return self._call("agent", "send_event", {"chat_id": chat_id, "event": event})["event_id"]


class ConfigurationClient(_PatClient):
    """The Configuration API with the integration's personal access token (Basic)."""

    def register_webhook(self, *, url: str, action: str, secret_key: str, description: str = "HITL console",
                         filters: dict | None = None, type: str = "license") -> str:
        """Register a webhook owned by config.client_id → its id."""
        body: dict[str, Any] = {"url": url, "description": description, "action": action, "secret_key": secret_key,
                                "owner_client_id": self.config.client_id, "type": type}
        if filters:
            body["filters"] = filters
        return self._call("configuration", "register_webhook", body)["id"]

    def list_webhooks(self) -> list[dict]:
        return self._call("configuration", "list_webhooks", {"owner_client_id": self.config.client_id})

    def unregister_webhook(self, *, webhook_id: str) -> None:
        self._call("configuration", "unregister_webhook", {"id": webhook_id, "owner_client_id": self.config.client_id})

    def enable_license_webhooks(self) -> None:
        self._call("configuration", "enable_license_webhooks", {"owner_client_id": self.config.client_id})


def call_with_retry(fn: Callable[[], T], *, budget_seconds: float = 10.0,
                    sleep: Callable[[float], None] = time.sleep) -> T:
    """Call `fn`, retrying LiveChatTransientError with exponential backoff (honouring
    retry_after) while the budget lasts; then re-raise the last error. Other errors pass through."""
    started, slept, delay = time.monotonic(), 0.0, 0.25
    while True:
        try:
            return fn()
        except LiveChatTransientError as error:
            # Jitter keeps many callers of one outage from retrying in lockstep.
            wait = error.retry_after if error.retry_after is not None else delay * random.uniform(1.0, 1.25)
            # max(): an injected `sleep` that does not really sleep still spends the budget.
            spent = max(time.monotonic() - started, slept)
            if spent + wait >= budget_seconds:
                raise
            logger.info("livechat retry in %.2f s after %s", wait, error.type)
            sleep(wait)
            slept += wait
            delay = min(delay * 2, 4.0)
