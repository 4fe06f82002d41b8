"""The sandbox's entities and its LiveChat-shaped errors (plain data; the logic is in state.py)."""
from __future__ import annotations

import base64
import secrets
import string
from dataclasses import dataclass, field
from datetime import datetime, timezone

ERROR_STATUS = {
    "authentication": 401, "authorization": 403, "missing_access": 403, "customer_banned": 403,
    "not_found": 404, "group_not_found": 404, "request_timeout": 408, "entity_too_large": 413,
    "too_many_requests": 429, "internal": 500, "service_unavailable": 503, "license_expired": 402,
}
_ALNUM = string.ascii_uppercase + string.digits


def new_id(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SandboxError(Exception):
    """A LiveChat-shaped error: `{"error":{"type","message"}}` with an HTTP status."""

    def __init__(self, type: str, message: str, status: int | None = None):
        super().__init__(message)
        self.type, self.message = type, message
        self.status = status or ERROR_STATUS.get(type, 400)

    def body(self) -> dict:
        return {"error": {"type": self.type, "message": self.message}}


class OAuthError(SandboxError):
    """The accounts token endpoint's error shape (HTTP 401)."""

    def __init__(self, kind: str, message: str):
        super().__init__(kind, message, 401)

    def body(self) -> dict:
        return {"oauth_exception": self.type, "exception_description": self.message}


@dataclass
class Organization:
    organization_id: str
    client_id: str
    account_id: str
    pat: str
    groups: dict[int, str]
    agents: dict[str, dict]
    oauth_tokens: set[str] = field(default_factory=set)
    license_webhooks_enabled: set[str] = field(default_factory=set)

    @property
    def agent_token(self) -> str:
        return base64.b64encode(f"{self.account_id}:{self.pat}".encode()).decode()

    @property
    def owner_agent_id(self) -> str:
        """The agent acting for PAT calls: the account when it is an agent, else the first agent."""
        return self.account_id if self.account_id in self.agents else next(iter(self.agents))


@dataclass
class Customer:
    id: str
    organization_id: str
    cid: str
    cst: str
    created_at: str = field(default_factory=now_iso)
    name: str = ""
    email: str | None = None
    avatar: str | None = None
    session_fields: list = field(default_factory=list)

    def view(self, present: bool = True) -> dict:
        data = {"id": self.id, "type": "customer", "name": self.name, "present": present,
                "created_at": self.created_at, "session_fields": self.session_fields}
        data.update({k: v for k, v in (("email", self.email), ("avatar", self.avatar)) if v})
        return data


@dataclass
class Thread:
    id: str
    active: bool
    group_ids: list[int]
    created_at: str = field(default_factory=now_iso)
    events: list[dict] = field(default_factory=list)
    user_ids: list[str] = field(default_factory=list)
    queue: dict | None = None
    previous_thread_id: str | None = None

    def view(self, *, include_notes: bool = True) -> dict:
        events = [dict(e) for e in self.events if include_notes or e.get("visibility") != "agents"]
        data = {"id": self.id, "active": self.active, "user_ids": list(self.user_ids), "events": events,
                "properties": {}, "access": {"group_ids": list(self.group_ids)}, "created_at": self.created_at}
        if self.queue:
            data["queue"] = dict(self.queue)
        if self.previous_thread_id:
            data["previous_thread_id"] = self.previous_thread_id
        return data


@dataclass
class Chat:
    id: str
    organization_id: str
    customer_id: str
    group_ids: list[int]
    properties: dict
    threads: list[Thread] = field(default_factory=list)
    agent_ids: list[str] = field(default_factory=list)  # agents in the chat, in join order
    absent_agent_ids: set[str] = field(default_factory=set)  # wrote without joining (present: false)

    @property
    def last_thread(self) -> Thread:
        return self.threads[-1]

    @property
    def active(self) -> bool:
        return bool(self.threads) and self.last_thread.active

    def thread(self, thread_id: str | None) -> Thread:
        if thread_id is None:
            return self.last_thread
        for thread in self.threads:
            if thread.id == thread_id:
                return thread
        raise SandboxError("not_found", "Thread not found")


@dataclass
class Webhook:
    id: str
    organization_id: str
    url: str
    action: str
    secret_key: str
    owner_client_id: str
    type: str
    description: str
    filters: dict

    def view(self) -> dict:
        return {"id": self.id, "url": self.url, "description": self.description, "action": self.action,
                "secret_key": self.secret_key, "owner_client_id": self.owner_client_id, "type": self.type,
                "filters": self.filters}
