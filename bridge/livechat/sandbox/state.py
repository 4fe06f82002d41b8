"""The sandbox's in-memory LiveChat: organizations, customers, tokens, chats, webhooks, faults.

Every public method takes the one lock, so HTTP handler threads and tests can call them at will.
Failures raise `SandboxError`, which the server renders as LiveChat's `{"error":{"type","message"}}`.
Webhooks are computed here (who gets what, in which envelope) and handed to the dispatcher under
the lock, so their per-chat order is the order of the changes.
"""
from __future__ import annotations

import secrets
import threading
import time
import uuid
from typing import Any
from urllib.parse import quote

from .models import Chat, Customer, OAuthError, Organization, SandboxError, Thread, Webhook, new_id, now_iso

TEXT_LIMIT = 16 * 1024
FILE_LIMIT = 10 * 1024 * 1024
WEBHOOKS_PER_ACTION = 3
LOG_LIMIT = 5000  # request log entries kept
EVENT_TYPES = {"message", "file", "rich_message", "system_message", "filled_form", "custom"}
WEBHOOK_ACTIONS = {
    "incoming_chat", "incoming_event", "event_updated", "chat_deactivated", "chat_transferred",
    "user_added_to_chat", "user_removed_from_chat", "chat_access_updated", "incoming_rich_message_postback",
    "chat_properties_updated", "thread_properties_updated", "customer_session_fields_updated",
}


def _redact_json(value: Any) -> Any:
    """A request body for the request log: secret_key values hidden."""
    if isinstance(value, dict):
        return {k: "[REDACTED]" if k == "secret_key" else _redact_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_json(v) for v in value]
    return value


class SandboxState:
    """All sandbox data behind one lock. `dispatcher.enqueue(key, url, envelope, **settings)` sends webhooks."""

    def __init__(self, dispatcher, *, webhook_timeout: float, webhook_retry_delays: tuple[float, ...],
                 token_ttl: int = 28800):
        self.lock = threading.RLock()
        self.dispatcher = dispatcher
        self._defaults = {"webhook_copies": 1, "webhook_timeout": webhook_timeout,
                          "webhook_retry_delays": list(webhook_retry_delays), "token_ttl": token_ttl}
        self.reset()

    # ---- lifecycle and settings -------------------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            self.settings: dict[str, Any] = dict(self._defaults, webhook_retry_delays=list(self._defaults["webhook_retry_delays"]))
            self.organizations: dict[str, Organization] = {}
            self.customers: dict[str, Customer] = {}
            self.tokens: dict[str, dict] = {}  # token → {customer_id, organization_id, expires_at}
            self.chats: dict[str, Chat] = {}
            self.webhooks: dict[str, Webhook] = {}
            self.static_webhooks: list[dict] = []
            self.faults: list[dict] = []
            self.files: dict[str, tuple[str, str, bytes]] = {}
            self.request_log: list[dict] = []
            self.dispatcher.clear()

    def configure(self, **settings: Any) -> dict:
        with self.lock:
            unknown = set(settings) - set(self._defaults)
            if unknown:
                raise SandboxError("validation", f"unknown settings: {', '.join(sorted(unknown))}")
            for key, value in settings.items():
                if value is not None:
                    self.settings[key] = list(value) if key == "webhook_retry_delays" else value
            return dict(self.settings)

    def add_organization(self, organization_id: str, client_id: str, account_id: str, pat: str, *,
                         group_ids=(0,), agents: list[dict] | None = None, oauth_tokens=()) -> str:
        agents = agents or [{"id": "smith@example.com", "name": "John Smith",
                             "avatar": "https://cdn.livechat-files.com/api/file/avatar.png"}]
        with self.lock:
            self.organizations[organization_id] = Organization(
                organization_id, client_id, account_id, pat,
                groups={int(g): ("General" if int(g) == 0 else f"Group {g}") for g in group_ids},
                agents={a["id"]: {"email": a["id"], **a} for a in agents}, oauth_tokens=set(oauth_tokens),
            )
            return self.organizations[organization_id].agent_token

    def add_oauth_token(self, organization_id: str, token: str) -> None:
        with self.lock:
            self._org(organization_id).oauth_tokens.add(token)

    def add_static_webhook(self, url: str, secret_key: str, actions: list[str] | None = None) -> dict:
        with self.lock:
            hook = {"id": f"static{len(self.static_webhooks) + 1}", "url": url, "secret_key": secret_key,
                    "actions": list(actions) if actions else None}
            self.static_webhooks.append(hook)
            return dict(hook, secret_key="[REDACTED]")

    def add_fault(self, method: str, count: int = 1, error_type: str | None = None, status: int | None = None,
                  delay: float | None = None, message: str | None = None) -> dict:
        if not error_type and not delay:
            raise SandboxError("validation", "a fault needs error_type and/or delay")
        with self.lock:
            fault = {"method": method, "remaining": int(count), "error_type": error_type, "status": status,
                     "delay": float(delay or 0), "message": message}
            self.faults.append(fault)
            return dict(fault)

    def take_fault(self, method: str) -> dict | None:
        """The next armed fault for `method` (counted down), or None."""
        with self.lock:
            for fault in self.faults:
                if fault["method"] == method and fault["remaining"] > 0:
                    fault["remaining"] -= 1
                    return dict(fault)
        return None

    def expire_tokens(self, customer_id: str | None = None) -> int:
        with self.lock:
            expired = 0
            for token in self.tokens.values():
                if customer_id in (None, token["customer_id"]):
                    token["expires_at"] = 0.0
                    expired += 1
            return expired

    def log_request(self, entry: dict) -> dict:
        with self.lock:
            entry["json"] = _redact_json(entry.get("json"))
            self.request_log.append(entry)
            del self.request_log[:-LOG_LIMIT]  # a demo sandbox runs for days
            return entry

    def requests(self, action: str | None = None) -> list[dict]:
        with self.lock:
            return [dict(e) for e in self.request_log if action in (None, e.get("action"))]

    # ---- authentication ---------------------------------------------------------------------
    def _org(self, organization_id: str) -> Organization:
        org = self.organizations.get(organization_id)
        if org is None:
            raise SandboxError("not_found", "Organization not found")
        return org

    def customer_for_token(self, authorization: str, organization_id: str | None) -> Customer:
        scheme, _, token = (authorization or "").partition(" ")
        with self.lock:
            record = self.tokens.get(token) if scheme.lower() == "bearer" else None
            if record is None or record["expires_at"] <= time.time():
                raise SandboxError("authentication", "Invalid access token")
            if not organization_id:
                raise SandboxError("validation", "organization_id is required")
            if record["organization_id"] != organization_id:
                raise SandboxError("authorization", "Organization mismatch")
            return self.customers[record["customer_id"]]

    def agent_for_credentials(self, authorization: str) -> tuple[Organization, str]:
        """(organization, acting agent id) for a Basic PAT or an agent OAuth Bearer token."""
        scheme, _, credential = (authorization or "").partition(" ")
        with self.lock:
            for org in self.organizations.values():
                if scheme.lower() == "basic" and credential == org.agent_token:
                    return org, org.owner_agent_id
                if scheme.lower() == "bearer" and credential in org.oauth_tokens:
                    return org, org.owner_agent_id
        # A customer token, an unknown PAT, or nothing: LiveChat says the same for all.
        raise SandboxError("authentication", "Invalid access token")

    # ---- accounts: customer token -----------------------------------------------------------
    def issue_token(self, body: dict, authorization: str, cookies: dict[str, str]) -> tuple[dict, dict[str, str]]:
        """(token answer, cookies to set) for the cookie or agent_token grant."""
        grant, client_id = body.get("grant_type"), body.get("client_id")
        with self.lock:
            # One LiveChat app (client_id) may be installed in many organizations.
            if grant == "cookie":
                org = self.organizations.get(body.get("organization_id"))
                if org is None or org.client_id != client_id:
                    raise OAuthError("invalid_client", "Unknown client_id or organization_id")
                if not body.get("redirect_uri"):
                    raise OAuthError("invalid_request", "redirect_uri is required")
                customer = next((c for c in self.customers.values() if c.organization_id == org.organization_id
                                 and c.cid == cookies.get("__lc_cid") and c.cst == cookies.get("__lc_cst")), None)
                customer = customer or self._new_customer(org)
                set_cookies = {"__lc_cid": customer.cid, "__lc_cst": customer.cst}
            elif grant == "agent_token":
                scheme, _, credential = (authorization or "").partition(" ")
                org = next((o for o in self.organizations.values() if scheme.lower() == "bearer"
                            and o.client_id == client_id and credential in o.oauth_tokens), None)
                if org is None:
                    raise OAuthError("invalid_request", "Invalid agent access token or client_id")
                entity_id = body.get("entity_id")
                if entity_id:
                    customer = self.customers.get(entity_id)
                    if customer is None or customer.organization_id != org.organization_id:
                        raise OAuthError("identity_exception", "Customer not found")
                else:
                    customer = self._new_customer(org)
                set_cookies = {}
            else:
                raise OAuthError("unsupported_grant_type", "Unsupported grant_type")
            token = "dal:" + secrets.token_urlsafe(20)
            ttl = int(self.settings["token_ttl"])
            self.tokens[token] = {"customer_id": customer.id, "organization_id": org.organization_id,
                                  "expires_at": time.time() + ttl}
            answer = {"access_token": token, "entity_id": customer.id, "expires_in": ttl, "token_type": "Bearer",
                      "organization_id": org.organization_id}
            if grant == "agent_token":
                answer["client_id"] = org.client_id
            return answer, set_cookies

    def _new_customer(self, org: Organization) -> Customer:
        customer = Customer(str(uuid.uuid4()), org.organization_id, cid=str(uuid.uuid4()),
                            cst=secrets.token_urlsafe(24))
        self.customers[customer.id] = customer
        return customer

    # ---- Customer Chat API ------------------------------------------------------------------
    def customer_action(self, customer: Customer, method: str, body: dict, files: dict | None = None,
                        file_base_url: str = "") -> Any:
        handler = getattr(self, f"_customer_{method}", None)
        if handler is None:
            raise SandboxError("not_found", f"Unknown method {method}")
        with self.lock:
            if method == "upload_file":
                return handler(customer, files or {}, file_base_url)
            return handler(customer, body)

    def _customer_start_chat(self, customer: Customer, body: dict) -> dict:
        org = self._org(customer.organization_id)
        spec = body.get("chat") or {}
        group_ids = self._groups(org, (spec.get("access") or {}).get("group_ids") or [0])
        events = ((spec.get("thread") or {}).get("events")) or []
        for event in events:
            self._validate_event(event)
        chat = Chat(new_id(10), org.organization_id, customer.id, group_ids, dict(spec.get("properties") or {}))
        self.chats[chat.id] = chat
        thread = self._open_thread(chat, customer, events)
        if body.get("active") is False:
            thread.active = False
        self._emit(org, "incoming_chat", {"chat": self._chat_view(chat, thread)}, chat.id)
        return {"chat_id": chat.id, "thread_id": thread.id, "event_ids": [e["id"] for e in thread.events]}

    def _customer_resume_chat(self, customer: Customer, body: dict) -> dict:
        spec = body.get("chat") or {}
        chat = self._customer_chat(customer, spec.get("id"))
        if chat.active:
            raise SandboxError("validation", "Chat is already active")
        org = self._org(chat.organization_id)
        if (spec.get("access") or {}).get("group_ids"):
            chat.group_ids = self._groups(org, spec["access"]["group_ids"])
        events = ((spec.get("thread") or {}).get("events")) or []
        for event in events:
            self._validate_event(event)
        thread = self._open_thread(chat, customer, events)
        self._emit(org, "incoming_chat", {"chat": self._chat_view(chat, thread)}, chat.id)
        return {"thread_id": thread.id, "event_ids": [e["id"] for e in thread.events]}

    def _customer_send_event(self, customer: Customer, body: dict) -> dict:
        chat = self._customer_chat(customer, body.get("chat_id"))
        event = body.get("event") or {}
        self._validate_event(event)
        thread = self._writable_thread(chat, body.get("attach_to_last_thread"))
        stored = self._add_event(chat, thread, event, author_id=customer.id, visibility="all")
        return {"event_id": stored["id"]}

    def _customer_deactivate_chat(self, customer: Customer, body: dict) -> dict:
        chat = self._customer_chat(customer, body.get("id"))
        self._close(chat, user_id=customer.id)
        return {}

    def _customer_get_chat(self, customer: Customer, body: dict) -> dict:
        chat = self._customer_chat(customer, body.get("chat_id"))
        return self._chat_view(chat, chat.thread(body.get("thread_id")), for_customer=True)

    def _customer_update_customer(self, customer: Customer, body: dict) -> dict:
        fields = {k: body[k] for k in ("name", "email", "avatar", "session_fields") if k in body}
        if not fields:
            raise SandboxError("validation", "At least one of name, email, avatar, session_fields is required")
        if "session_fields" in fields and not (
                isinstance(fields["session_fields"], list)
                and all(isinstance(f, dict) and len(f) == 1 for f in fields["session_fields"])):
            raise SandboxError("validation", "session_fields must be a list of one-key objects")
        for key, value in fields.items():
            setattr(customer, key, value)
        return {}

    def _customer_get_customer(self, customer: Customer, body: dict) -> dict:
        view = customer.view()
        view.pop("present")
        return view

    def _customer_upload_file(self, customer: Customer, files: dict, base_url: str) -> dict:
        upload = files.get("file")
        if not upload:
            raise SandboxError("validation", "Multipart field 'file' is required")
        filename, content_type, content = upload
        if len(content) > FILE_LIMIT:
            raise SandboxError("entity_too_large", "File is too large (max 10 MB)")
        file_id = uuid.uuid4().hex
        self.files[file_id] = (filename or "file", content_type or "application/octet-stream", content)
        return {"url": f"{base_url}/files/{file_id}/{quote(filename or 'file')}"}

    def _customer_chat(self, customer: Customer, chat_id: Any) -> Chat:
        chat = self.chats.get(chat_id) if isinstance(chat_id, str) else None
        if chat is None or chat.customer_id != customer.id:
            raise SandboxError("not_found", "Chat not found")
        return chat

    # ---- Agent Chat API (PAT) ---------------------------------------------------------------
    def agent_action(self, org: Organization, agent_id: str, method: str, body: dict) -> Any:
        handler = getattr(self, f"_agent_{method}", None)
        if handler is None:
            raise SandboxError("not_found", f"Unknown method {method}")
        with self.lock:
            return handler(org, agent_id, body)

    def _agent_transfer_chat(self, org: Organization, agent_id: str, body: dict) -> dict:
        target = body.get("target") or {}
        ids = target.get("ids") or []
        if target.get("type") not in ("group", "agent") or not ids:
            raise SandboxError("validation", "target.type must be group or agent, with ids")
        key = "group_id" if target["type"] == "group" else "agent_id"
        self._transfer(self._org_chat(org, body.get("id")), requester_id=agent_id, **{key: ids[0]})
        return {}

    def _agent_deactivate_chat(self, org: Organization, agent_id: str, body: dict) -> dict:
        self._close(self._org_chat(org, body.get("id")), user_id=agent_id)
        return {}

    def _agent_get_chat(self, org: Organization, agent_id: str, body: dict) -> dict:
        chat = self._org_chat(org, body.get("chat_id"))
        return self._chat_view(chat, chat.thread(body.get("thread_id")))

    def _agent_list_chats(self, org: Organization, agent_id: str, body: dict) -> dict:
        filters = body.get("filters") or {}
        chats = [c for c in self.chats.values() if c.organization_id == org.organization_id]
        if "active" in filters:
            chats = [c for c in chats if c.active == bool(filters["active"])]
        if filters.get("group_ids"):
            chats = [c for c in chats if set(c.group_ids) & set(filters["group_ids"])]
        limit = max(1, min(int(body.get("limit") or 10), 100))
        summaries = [{"id": c.id, "users": self._users(c), "access": {"group_ids": list(c.group_ids)},
                      "properties": c.properties,
                      "last_thread_summary": {k: v for k, v in c.last_thread.view().items() if k != "events"}}
                     for c in reversed(chats)]
        return {"chats_summary": summaries[:limit], "found_chats": len(summaries)}

    def _agent_send_event(self, org: Organization, agent_id: str, body: dict) -> dict:
        chat = self._org_chat(org, body.get("chat_id"))
        event = body.get("event") or {}
        self._validate_event(event)
        thread = self._writable_thread(chat, body.get("attach_to_last_thread"))
        if agent_id not in chat.agent_ids and agent_id not in chat.absent_agent_ids:
            # LiveChat announces an agent who writes without joining, with present: false.
            chat.absent_agent_ids.add(agent_id)
            self._emit_user_added(org, chat, agent_id, requester_id=agent_id, present=False)
        stored = self._add_event(chat, thread, event, author_id=agent_id, visibility=event.get("visibility", "all"))
        return {"event_id": stored["id"]}

    def _org_chat(self, org: Organization, chat_id: Any) -> Chat:
        chat = self.chats.get(chat_id) if isinstance(chat_id, str) else None
        if chat is None or chat.organization_id != org.organization_id:
            raise SandboxError("not_found", "Chat not found")
        return chat

    # ---- Configuration API (PAT) ------------------------------------------------------------
    def configuration_action(self, org: Organization, method: str, body: dict) -> Any:
        handler = getattr(self, f"_config_{method}", None)
        if handler is None:
            raise SandboxError("not_found", f"Unknown method {method}")
        with self.lock:
            return handler(org, body)

    def _owner(self, org: Organization, body: dict) -> str:
        owner = body.get("owner_client_id")
        if not owner:
            raise SandboxError("validation", "owner_client_id is required")
        if owner != org.client_id:
            raise SandboxError("authorization", "owner_client_id does not belong to this organization")
        return owner

    def _config_register_webhook(self, org: Organization, body: dict) -> dict:
        owner = self._owner(org, body)
        url, action, secret = body.get("url"), body.get("action"), body.get("secret_key")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise SandboxError("validation", "url must be an http(s) URL")
        if action not in WEBHOOK_ACTIONS:
            raise SandboxError("validation", "Unknown action")
        if not secret:
            raise SandboxError("validation", "secret_key is required")
        if body.get("type") not in ("license", "bot"):
            raise SandboxError("validation", "type must be license or bot")
        filters = body.get("filters") or {}
        if "author_type" in filters and (action not in ("incoming_event", "event_updated")
                                         or filters["author_type"] not in ("customer", "agent")):
            raise SandboxError("validation", "filters.author_type is only for incoming_event/event_updated")
        same = [w for w in self.webhooks.values() if w.owner_client_id == owner and w.action == action]
        if len(same) >= WEBHOOKS_PER_ACTION:
            raise SandboxError("limit_reached", f"At most {WEBHOOKS_PER_ACTION} webhooks per action")
        hook = Webhook(uuid.uuid4().hex, org.organization_id, url, action, secret, owner, body["type"],
                       body.get("description") or "", filters)
        self.webhooks[hook.id] = hook
        return {"id": hook.id}

    def _config_list_webhooks(self, org: Organization, body: dict) -> list:
        owner = self._owner(org, body)
        return [w.view() for w in self.webhooks.values() if w.owner_client_id == owner]

    def _config_unregister_webhook(self, org: Organization, body: dict) -> dict:
        owner = self._owner(org, body)
        hook = self.webhooks.get(body.get("id"))
        if hook is None or hook.owner_client_id != owner:
            raise SandboxError("not_found", "Webhook not found")
        del self.webhooks[hook.id]
        return {}

    def _config_enable_license_webhooks(self, org: Organization, body: dict) -> dict:
        org.license_webhooks_enabled.add(self._owner(org, body))
        return {}

    def _config_disable_license_webhooks(self, org: Organization, body: dict) -> dict:
        org.license_webhooks_enabled.discard(self._owner(org, body))
        return {}

    def _config_get_license_webhooks_state(self, org: Organization, body: dict) -> dict:
        return {"license_webhooks_enabled": self._owner(org, body) in org.license_webhooks_enabled}

    def _config_list_groups(self, org: Organization, body: dict) -> list:
        return [self._group_view(org, gid) for gid in org.groups]

    def _config_get_group(self, org: Organization, body: dict) -> dict:
        group_id = body.get("id")
        if not isinstance(group_id, int) or group_id not in org.groups:
            raise SandboxError("group_not_found", "Group not found")
        return self._group_view(org, group_id)

    @staticmethod
    def _group_view(org: Organization, group_id: int) -> dict:
        return {"id": group_id, "name": org.groups[group_id], "language_code": "en",
                "agent_priorities": {agent_id: "normal" for agent_id in org.agents},
                "routing_status": "accepting_chats"}

    # ---- the agent's side (control routes and agent page) -----------------------------------
    def list_chats(self) -> list[dict]:
        with self.lock:
            rows = []
            for chat in reversed(list(self.chats.values())):
                thread = chat.last_thread
                last = next((e for e in reversed(thread.events)), None)
                rows.append({"id": chat.id, "organization_id": chat.organization_id, "customer_id": chat.customer_id,
                             "customer_name": self.customers[chat.customer_id].name, "active": chat.active,
                             "thread_id": thread.id, "group_ids": list(chat.group_ids), "agent_ids": list(chat.agent_ids),
                             "queue": thread.queue, "events_count": len(thread.events), "last_event": last})
            return rows

    def chat_detail(self, chat_id: str) -> dict:
        with self.lock:
            chat = self._chat(chat_id)
            org = self.organizations.get(chat.organization_id)
            return {"id": chat.id, "organization_id": chat.organization_id, "active": chat.active,
                    "access": {"group_ids": list(chat.group_ids)}, "properties": chat.properties,
                    "users": self._users(chat), "threads": [t.view() for t in chat.threads],
                    "organization": {"groups": list(org.groups) if org else [],
                                     "agents": list(org.agents.values()) if org else []}}

    def join(self, chat_id: str, agent_id: str) -> dict:
        with self.lock:
            chat, org = self._chat_and_org(chat_id)
            self._agent(org, agent_id)
            self._writable_thread(chat, False)
            self._join(org, chat, agent_id, requester_id=agent_id)
            return {}

    def agent_message(self, chat_id: str, agent_id: str, text: str, visibility: str = "all") -> dict:
        return self._agent_event(chat_id, agent_id, {"type": "message", "text": text}, visibility)

    def agent_file(self, chat_id: str, agent_id: str, name: str, url: str, content_type: str = "application/octet-stream",
                   size: int = 0, **extra: Any) -> dict:
        event = {"type": "file", "name": name, "url": url, "content_type": content_type, "size": int(size or 0)}
        event.update({k: v for k, v in extra.items() if k in ("width", "height", "thumbnail_url", "alternative_text")})
        return self._agent_event(chat_id, agent_id, event, "all")

    def rich_message(self, chat_id: str, agent_id: str, template_id: str = "cards", elements: list | None = None,
                     **extra: Any) -> dict:
        elements = elements or [{"title": extra.get("title") or "Choose one",
                                 "buttons": [{"text": b, "postback_id": f"action_{i}", "user_ids": []}
                                             for i, b in enumerate(extra.get("buttons") or ["Yes", "No"])]}]
        return self._agent_event(chat_id, agent_id, {"type": "rich_message", "template_id": template_id,
                                                     "elements": elements}, "all")

    def note(self, chat_id: str, agent_id: str, text: str) -> dict:
        return self._agent_event(chat_id, agent_id, {"type": "message", "text": text}, "agents", join=False)

    def system_message(self, chat_id: str, text: str, system_message_type: str = "manual") -> dict:
        with self.lock:
            chat, org = self._chat_and_org(chat_id)
            thread = self._writable_thread(chat, False)
            event = self._add_event(chat, thread, {"type": "system_message", "text": text,
                                                   "system_message_type": system_message_type},
                                    author_id=None, visibility="all")
            return {"event_id": event["id"]}

    def transfer(self, chat_id: str, group_id: int | None = None, agent_id: str | None = None,
                 queue_position: int | None = None, wait_time: int | None = None,
                 requester_id: str | None = None) -> dict:
        with self.lock:
            chat, org = self._chat_and_org(chat_id)
            requester = requester_id or (chat.agent_ids[0] if chat.agent_ids else org.owner_agent_id)
            self._transfer(chat, requester_id=requester, group_id=group_id, agent_id=agent_id,
                           queue_position=queue_position, wait_time=wait_time)
            return {}

    def close(self, chat_id: str, agent_id: str | None = None, router: bool = False) -> dict:
        with self.lock:
            chat, org = self._chat_and_org(chat_id)
            if agent_id and not router:
                self._agent(org, agent_id)
            self._close(chat, user_id=None if router or not agent_id else agent_id)
            return {}

    def file(self, file_id: str) -> tuple[str, str, bytes] | None:
        with self.lock:
            return self.files.get(file_id)

    def _agent_event(self, chat_id: str, agent_id: str, event: dict, visibility: str, join: bool = True) -> dict:
        with self.lock:
            chat, org = self._chat_and_org(chat_id)
            self._agent(org, agent_id)
            if event.get("type") == "message":
                self._validate_event(event)
            thread = self._writable_thread(chat, False)
            if join and agent_id not in chat.agent_ids:
                # Replying to a waiting chat picks it up, as in the LiveChat agent app.
                self._join(org, chat, agent_id, requester_id=agent_id)
            stored = self._add_event(chat, thread, event, author_id=agent_id, visibility=visibility)
            return {"event_id": stored["id"]}

    # ---- shared mechanics -------------------------------------------------------------------
    def _chat(self, chat_id: str) -> Chat:
        chat = self.chats.get(chat_id)
        if chat is None:
            raise SandboxError("not_found", "Chat not found")
        return chat

    def _chat_and_org(self, chat_id: str) -> tuple[Chat, Organization]:
        chat = self._chat(chat_id)
        return chat, self._org(chat.organization_id)

    @staticmethod
    def _agent(org: Organization, agent_id: str) -> dict:
        agent = org.agents.get(agent_id)
        if agent is None:
            raise SandboxError("not_found", "Agent not found")
        return agent

    @staticmethod
    def _groups(org: Organization, group_ids: list) -> list[int]:
        for gid in group_ids:
            if gid not in org.groups:
                raise SandboxError("group_not_found", f"Group {gid} not found")
        return [int(g) for g in group_ids]

    @staticmethod
    def _validate_event(event: Any) -> None:
        if not isinstance(event, dict) or event.get("type") not in EVENT_TYPES:
            raise SandboxError("validation", "event.type must be one of " + ", ".join(sorted(EVENT_TYPES)))
        if event["type"] == "message":
            text = event.get("text")
            if not isinstance(text, str) or not text:
                raise SandboxError("validation", "event.text is required")
            if len(text.encode()) > TEXT_LIMIT:
                raise SandboxError("validation", "event.text is too long (max 16 KB)")
        if event["type"] == "file" and not event.get("url"):
            raise SandboxError("validation", "event.url is required")

    def _writable_thread(self, chat: Chat, attach_to_last_thread: Any) -> Thread:
        if chat.active:
            return chat.last_thread
        if attach_to_last_thread and chat.threads:
            return chat.last_thread
        raise SandboxError("chat_inactive", "Chat is inactive")

    def _open_thread(self, chat: Chat, customer: Customer, events: list[dict]) -> Thread:
        previous = chat.threads[-1].id if chat.threads else None
        thread = Thread(new_id(8), True, list(chat.group_ids), user_ids=[customer.id], previous_thread_id=previous)
        chat.threads.append(thread)
        chat.agent_ids, chat.absent_agent_ids = [], set()
        for event in events:
            self._add_event(chat, thread, event, author_id=customer.id, visibility="all", emit=False)
        return thread

    def _add_event(self, chat: Chat, thread: Thread, event: dict, *, author_id: str | None, visibility: str,
                   emit: bool = True) -> dict:
        stored = {k: v for k, v in event.items() if k not in ("id", "author_id", "created_at", "recipients", "visibility")}
        stored.update(id=f"{thread.id}_{len(thread.events) + 1}", created_at=now_iso(), visibility=visibility)
        if author_id:
            stored["author_id"] = author_id
        if stored["type"] == "file":
            self._describe_file(stored)
        thread.events.append(stored)
        if emit:
            author_type = "customer" if author_id == chat.customer_id else "agent"
            self._emit(self._org(chat.organization_id), "incoming_event",
                       {"chat_id": chat.id, "thread_id": thread.id, "event": dict(stored)}, chat.id, author_type)
        return stored

    def _describe_file(self, event: dict) -> None:
        """Fill name/size/content_type for a file this sandbox serves, as LiveChat does for its CDN."""
        parts = str(event.get("url", "")).split("/files/", 1)
        stored = self.files.get(parts[1].split("/", 1)[0]) if len(parts) == 2 else None
        if stored:
            name, content_type, content = stored
            event.setdefault("name", name)
            event.setdefault("content_type", content_type)
            event.setdefault("size", len(content))

    def _join(self, org: Organization, chat: Chat, agent_id: str, *, requester_id: str, reason: str = "manual") -> None:
        if agent_id in chat.agent_ids:
            return
        chat.agent_ids.append(agent_id)
        chat.absent_agent_ids.discard(agent_id)
        thread = chat.last_thread
        thread.queue = None
        if agent_id not in thread.user_ids:
            thread.user_ids.append(agent_id)
        self._emit_user_added(org, chat, agent_id, requester_id=requester_id, reason=reason)

    def _emit_user_added(self, org: Organization, chat: Chat, agent_id: str, *, requester_id: str,
                         present: bool = True, reason: str = "manual") -> None:
        user = self._agent_view(org, agent_id, present=present)
        self._emit(org, "user_added_to_chat", {"chat_id": chat.id, "thread_id": chat.last_thread.id, "user": user,
                                               "user_type": "agent", "reason": reason, "requester_id": requester_id},
                   chat.id)

    def _transfer(self, chat: Chat, *, requester_id: str, group_id: int | None = None, agent_id: str | None = None,
                  queue_position: int | None = None, wait_time: int | None = None) -> None:
        org = self._org(chat.organization_id)
        if (group_id is None) == (agent_id is None):
            raise SandboxError("validation", "Give exactly one of group_id or agent_id")
        thread = self._writable_thread(chat, False)
        if agent_id is not None:
            self._agent(org, agent_id)
        else:
            group_id = self._groups(org, [group_id])[0]
        for leaving in [a for a in chat.agent_ids if a != agent_id]:
            chat.agent_ids.remove(leaving)
            self._emit(org, "user_removed_from_chat", {"chat_id": chat.id, "thread_id": thread.id, "user_id": leaving,
                                                       "reason": "manual", "requester_id": requester_id}, chat.id)
        payload: dict[str, Any] = {"chat_id": chat.id, "thread_id": thread.id, "requester_id": requester_id,
                                   "reason": "manual",
                                   "transferred_to": {"agent_ids": [agent_id]} if agent_id else {"group_ids": [group_id]}}
        thread.queue = None
        if queue_position is not None and agent_id is None:
            thread.queue = {"position": int(queue_position), "wait_time": int(wait_time or 0), "queued_at": now_iso()}
            payload["queue"] = dict(thread.queue)
        if group_id is not None and chat.group_ids != [group_id]:
            chat.group_ids = thread.group_ids = [group_id]
            self._emit(org, "chat_access_updated", {"id": chat.id, "access": {"group_ids": [group_id]}}, chat.id)
        self._emit(org, "chat_transferred", payload, chat.id)
        if agent_id is not None:
            self._join(org, chat, agent_id, requester_id=requester_id)

    def _close(self, chat: Chat, *, user_id: str | None) -> None:
        if not chat.active:
            raise SandboxError("chat_inactive", "Chat is inactive")
        thread = chat.last_thread
        thread.active, thread.queue = False, None
        chat.agent_ids = []
        payload = {"chat_id": chat.id, "thread_id": thread.id}
        if user_id:
            payload["user_id"] = user_id
        self._emit(self._org(chat.organization_id), "chat_deactivated", payload, chat.id)

    def _agent_view(self, org: Organization, agent_id: str, present: bool = True) -> dict:
        agent = org.agents.get(agent_id) or {"id": agent_id, "name": agent_id}
        view = {"id": agent_id, "name": agent.get("name", agent_id), "email": agent.get("email", agent_id),
                "type": "agent", "present": present, "visibility": "all",
                "events_seen_up_to": "1970-01-01T00:00:00.000000Z"}
        if agent.get("avatar"):
            view["avatar"] = agent["avatar"]
        return view

    def _users(self, chat: Chat) -> list[dict]:
        org = self._org(chat.organization_id)
        users = [self.customers[chat.customer_id].view()]
        users += [self._agent_view(org, a) for a in chat.agent_ids]
        users += [self._agent_view(org, a, present=False) for a in sorted(chat.absent_agent_ids)]
        return users

    def _chat_view(self, chat: Chat, thread: Thread, *, for_customer: bool = False) -> dict:
        return {"id": chat.id, "thread": thread.view(include_notes=not for_customer), "users": self._users(chat),
                "access": {"group_ids": list(chat.group_ids)}, "properties": chat.properties}

    # ---- webhooks ---------------------------------------------------------------------------
    def _emit(self, org: Organization, action: str, payload: dict, chat_id: str, author_type: str | None = None) -> None:
        """Queue `action` for every webhook that wants it (registered ones, then static ones)."""
        targets = []
        for hook in self.webhooks.values():
            if hook.organization_id != org.organization_id or hook.action != action:
                continue
            if hook.type == "license" and hook.owner_client_id not in org.license_webhooks_enabled:
                continue  # LiveChat sends license webhooks only after enable_license_webhooks
            wanted = hook.filters.get("author_type")
            if wanted and author_type and wanted != author_type:
                continue
            targets.append((hook.id, hook.url, hook.secret_key))
        targets += [(h["id"], h["url"], h["secret_key"]) for h in self.static_webhooks
                    if h["actions"] is None or action in h["actions"]]
        for webhook_id, url, secret_key in targets:
            envelope = {"webhook_id": webhook_id, "secret_key": secret_key, "action": action,
                        "organization_id": org.organization_id, "payload": payload, "additional_data": {}}
            self.dispatcher.enqueue(chat_id, url, envelope, copies=int(self.settings["webhook_copies"]),
                                    timeout=float(self.settings["webhook_timeout"]),
                                    retry_delays=tuple(self.settings["webhook_retry_delays"]))
