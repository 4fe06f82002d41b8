"""The LiveChat sandbox: an HTTP server speaking the subset of LiveChat in WIRE.md.

It serves the accounts base and the API base on one host, so point both LIVECHAT_ACCOUNTS_URL
and LIVECHAT_API_URL at `server.url`.

LiveChat routes
  POST /v2/customer/token                          cookie grant (Set-Cookie __lc_cid/__lc_cst; the same
                                                   cookies renew the same customer) and agent_token grant
  POST /v{3.5,3.6}/customer/action/<method>?organization_id=…   Bearer customer token
       start_chat resume_chat send_event deactivate_chat get_chat update_customer get_customer upload_file
  POST /v{3.5,3.6}/agent/action/<method>            Basic PAT (or a registered agent OAuth Bearer token)
       transfer_chat deactivate_chat get_chat list_chats send_event
  POST /v{3.5,3.6}/configuration/action/<method>    Basic PAT
       register_webhook list_webhooks unregister_webhook enable_license_webhooks disable_license_webhooks
       get_license_webhooks_state list_groups get_group
  GET  /files/<id>/<name>                           files uploaded with upload_file (the "CDN")

Agent page (for people): GET / or /agent/ lists chats; GET /agent/chats/<id> shows one chat with forms
to join, reply, send a file link or a rich message, write an internal note, transfer and close.

Control routes (JSON, for tests and scripts; only LiveChat routes go to the request log)
  GET  /_sandbox/chats                              chat summaries, newest first
  GET  /_sandbox/chats/<id>                         threads (with events), users, access, active
  POST /_sandbox/chats/<id>/join                    {agent_id}
  POST /_sandbox/chats/<id>/message                 {agent_id, text, visibility?="all"} (joins first if needed)
  POST /_sandbox/chats/<id>/file                    {agent_id, name, url, content_type?, size?, width?, height?}
  POST /_sandbox/chats/<id>/rich_message            {agent_id, template_id?, elements? | title?, buttons?}
  POST /_sandbox/chats/<id>/note                    {agent_id, text} (visibility "agents")
  POST /_sandbox/chats/<id>/system_message          {text, system_message_type?}
  POST /_sandbox/chats/<id>/transfer                {group_id | agent_id, queue_position?, wait_time?, requester_id?}
  POST /_sandbox/chats/<id>/close                   {agent_id} or {router: true}
  POST /_sandbox/faults                             {method, count?=1, error_type?, status?, delay?, message?}:
                                                    the next `count` calls of `method` ("send_event", "token", …)
                                                    wait `delay` s and/or fail with `error_type`
  POST /_sandbox/tokens/expire                      {customer_id?} expire customer tokens now → {"expired": n}
  POST /_sandbox/webhooks                           {url, secret_key, actions?} send these actions (all if
                                                    omitted) of every organization there
  GET  /_sandbox/webhooks                           registered and static webhooks
  GET|POST /_sandbox/settings                       {webhook_copies, webhook_timeout, webhook_retry_delays, token_ttl}
  POST /_sandbox/organizations                      {organization_id, client_id, account_id, pat, group_ids?,
                                                    agents?, oauth_tokens?} → {"agent_token"}
  POST /_sandbox/oauth_tokens                       {organization_id, token} (for the agent_token grant)
  GET  /_sandbox/requests[?action=m]                every LiveChat request: method, path, api, action, status,
                                                    json (secret_key redacted), headers (Authorization/Cookie redacted)
  GET  /_sandbox/webhook_deliveries[?action=a]      every webhook attempt: action, url, attempt, copy, status, envelope
  POST /_sandbox/webhooks/wait                      {timeout?} wait until queued webhooks are done → {"idle": bool}
  POST /_sandbox/reset                              forget everything (settings back to the server's defaults)
Errors of the control routes use LiveChat's shape too.
"""
from __future__ import annotations

import inspect
import json
import logging
import re
import threading
import time
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from . import agent_page
from .models import OAuthError, SandboxError
from .state import SandboxState
from .webhooks import WebhookDispatcher

logger = logging.getLogger("bridge.livechat.sandbox")

API_VERSIONS = {"3.5", "3.6"}
_API_PATH = re.compile(r"^/v(?P<version>\d+\.\d+)/(?P<api>customer|agent|configuration)/action/(?P<method>\w+)$")
_CHAT_OP_PATH = re.compile(r"^/(?:_sandbox|agent)/chats/(?P<chat_id>[\w-]+)/(?P<op>\w+)$")
_MAX_BODY = 12 * 1024 * 1024  # above the 10 MB upload limit, so entity_too_large is the answer, not a reset

# Control route name → SandboxState method (agent-side actions on one chat).
CHAT_OPS = {"join": "join", "message": "agent_message", "file": "agent_file", "rich_message": "rich_message",
            "note": "note", "system_message": "system_message", "transfer": "transfer", "close": "close"}


class _Response:
    def __init__(self, status: int, body: bytes = b"", content_type: str = "application/json",
                 headers: list[tuple[str, str]] | None = None):
        self.status, self.body, self.content_type, self.headers = status, body, content_type, headers or []

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> "_Response":
        return cls(status, json.dumps(data).encode(), "application/json", headers)

    @classmethod
    def html(cls, text: str, status: int = 200) -> "_Response":
        return cls(status, text.encode(), "text/html; charset=utf-8")

    @classmethod
    def redirect(cls, location: str) -> "_Response":
        return cls(303, b"", "text/plain", [("Location", location)])


def _redact_authorization(value: str | None) -> str | None:
    if not value:
        return None
    scheme = value.split(" ", 1)[0]
    return f"{scheme} [REDACTED]"


def _cookies(header: str | None) -> dict[str, str]:
    cookies = {}
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name:
            cookies[name] = value.strip().strip('"')
    return cookies


def _parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str, str, bytes]]:
    """field name → (filename, content type, bytes) for the file parts of a multipart body."""
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    files = {}
    for part in message.iter_parts() if message.is_multipart() else []:
        name = part.get_param("name", header="content-disposition")
        if name:
            files[name] = (part.get_filename() or "", part.get_content_type(), part.get_payload(decode=True) or b"")
    return files


def _call_with_fields(function, *args: Any, **fields: Any) -> Any:
    """Call a state method with JSON fields, refusing unknown or missing ones as `validation`."""
    try:
        inspect.signature(function).bind(*args, **fields)
    except TypeError as exc:
        raise SandboxError("validation", str(exc)) from None
    return function(*args, **fields)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so the client's pooled session is exercised
    disable_nagle_algorithm = True  # headers and body go out as separate writes: avoid 40 ms delayed-ACK stalls
    server_version = "LiveChatSandbox/1.0"

    @property
    def sandbox(self) -> "SandboxServer":
        return self.server.sandbox  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("sandbox %s", format % args)

    def _handle(self) -> None:
        split = urlsplit(self.path)
        path, query = split.path, {k: v[-1] for k, v in parse_qs(split.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            self.close_connection = True
            return self._send(_Response.json(SandboxError("entity_too_large", "Request body too large").body(), 413))
        self._raw_body = self.rfile.read(length) if length else b""
        self._parsed_files = None  # the handler object serves every request of a keep-alive connection
        started = time.monotonic()
        try:
            response = self._route(path, query)
        except SandboxError as error:
            response = _Response.json(error.body(), error.status)
        except Exception:  # a sandbox bug must still answer like LiveChat would
            logger.exception("sandbox error on %s %s", self.command, path)
            response = _Response.json(SandboxError("internal", "Internal sandbox error").body(), 500)
        if path == "/v2/customer/token" or _API_PATH.match(path):
            self._record(path, split.query, response.status, started)
        self._send(response)

    def _send(self, response: _Response) -> None:
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers:
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a timeout test): nothing to tell it

    def _record(self, path: str, query: str, status: int, started: float) -> None:
        match = _API_PATH.match(path)
        api, action = (match["api"], match["method"]) if match else ("token", "token")
        files = self._files()
        body = self._json_or_none() if files is None else {
            name: {"filename": f[0], "content_type": f[1], "size": len(f[2])} for name, f in files.items()}
        self.sandbox.state.log_request({
            "method": self.command, "path": path, "query": query, "api": api, "action": action, "status": status,
            "duration_ms": round((time.monotonic() - started) * 1000), "json": body,
            "headers": {"Authorization": _redact_authorization(self.headers.get("Authorization")),
                        "Cookie": "; ".join(f"{n}=[REDACTED]" for n in _cookies(self.headers.get("Cookie"))) or None,
                        "Content-Type": self.headers.get("Content-Type")},
        })

    # ---- body helpers -----------------------------------------------------------------------
    def _files(self) -> dict[str, tuple[str, str, bytes]] | None:
        """The file parts of a multipart body (parsed once), or None for other bodies."""
        content_type = self.headers.get("Content-Type") or ""
        if not content_type.startswith("multipart/form-data"):
            return None
        if self._parsed_files is None:
            self._parsed_files = _parse_multipart(content_type, self._raw_body)
        return self._parsed_files

    def _json_or_none(self) -> Any:
        try:
            return json.loads(self._raw_body) if self._raw_body else None
        except ValueError:
            return None

    def _json(self) -> dict:
        if not self._raw_body.strip():
            return {}
        try:
            data = json.loads(self._raw_body)
        except ValueError:
            raise SandboxError("validation", "Request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise SandboxError("validation", "Request body must be a JSON object")
        return data

    def _form(self) -> dict[str, str]:
        return dict(parse_qsl(self._raw_body.decode("utf-8", "replace"), keep_blank_values=False))

    # ---- routing ----------------------------------------------------------------------------
    def _route(self, path: str, query: dict[str, str]) -> _Response:
        state = self.sandbox.state
        if self.command == "POST" and path == "/v2/customer/token":
            return self._token()
        match = _API_PATH.match(path)
        if match and self.command == "POST":
            return self._api(match["version"], match["api"], match["method"], query)
        if path.startswith("/_sandbox/"):
            return self._control(path, query)
        if self.command == "GET" and path in ("/", "/agent", "/agent/"):
            return _Response.html(agent_page.chat_list(state.list_chats()))
        if self.command == "GET" and path.startswith("/agent/chats/"):
            chat_id = path.rsplit("/", 1)[-1]
            return _Response.html(agent_page.chat_view(state.chat_detail(chat_id)))
        op_match = _CHAT_OP_PATH.match(path)
        if self.command == "POST" and op_match and path.startswith("/agent/"):
            return self._agent_form(op_match["chat_id"], op_match["op"])
        if self.command == "GET" and path.startswith("/files/"):
            parts = path.split("/")
            stored = state.file(parts[2]) if len(parts) >= 3 else None
            if stored is None:
                raise SandboxError("not_found", "File not found")
            return _Response(200, stored[2], stored[1])
        raise SandboxError("not_found", f"No route for {self.command} {path}")

    def _apply_fault(self, method: str) -> None:
        fault = self.sandbox.state.take_fault(method)
        if fault is None:
            return
        if fault["delay"]:
            time.sleep(fault["delay"])  # outside the state lock: other requests go on
        error_type = fault["error_type"]
        if error_type:
            message = fault["message"] or f"Injected {error_type}"
            if method == "token" and error_type in ("authentication", "authorization", "invalid_request"):
                raise OAuthError("invalid_request", message)
            raise SandboxError(error_type, message, fault["status"])

    def _token(self) -> _Response:
        self._apply_fault("token")
        if (self.headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
            body: dict = self._form()
        else:
            body = self._json()
        answer, cookies = self.sandbox.state.issue_token(body, self.headers.get("Authorization", ""),
                                                         _cookies(self.headers.get("Cookie")))
        set_cookies = [("Set-Cookie", f"{name}={value}; Path=/; Max-Age=63072000; HttpOnly; SameSite=None")
                       for name, value in cookies.items()]
        return _Response.json(answer, headers=set_cookies)

    def _api(self, version: str, api: str, method: str, query: dict[str, str]) -> _Response:
        if version not in API_VERSIONS:
            raise SandboxError("not_found", f"Unsupported API version {version}")
        self._apply_fault(method)
        state = self.sandbox.state
        authorization = self.headers.get("Authorization", "")
        if api == "customer":
            customer = state.customer_for_token(authorization, query.get("organization_id"))
            files = self._files()
            body = {} if files is not None else self._json()
            base_url = f"http://{self.headers.get('Host')}" if self.headers.get("Host") else self.sandbox.url
            return _Response.json(state.customer_action(customer, method, body, files, base_url))
        org, agent_id = state.agent_for_credentials(authorization)
        if api == "agent":
            return _Response.json(state.agent_action(org, agent_id, method, self._json()))
        return _Response.json(state.configuration_action(org, method, self._json()))

    def _agent_form(self, chat_id: str, op: str) -> _Response:
        """The agent page's HTML forms: same actions as the control routes, then back to the chat."""
        try:
            fields = agent_page.form_fields(op, self._form())
            _call_with_fields(getattr(self.sandbox.state, CHAT_OPS[op]), chat_id, **fields)
        except (SandboxError, KeyError, ValueError) as error:
            message = error.message if isinstance(error, SandboxError) else f"bad form: {error}"
            return _Response.html(agent_page.error_page(chat_id, message), 400)
        return _Response.redirect(f"/agent/chats/{chat_id}")

    def _control(self, path: str, query: dict[str, str]) -> _Response:
        sandbox, state, verb = self.sandbox, self.sandbox.state, self.command
        route = path[len("/_sandbox/"):].rstrip("/")
        if verb == "GET":
            if route == "chats":
                return _Response.json(state.list_chats())
            if route.startswith("chats/"):
                return _Response.json(state.chat_detail(route.split("/", 1)[1]))
            if route == "requests":
                return _Response.json(state.requests(query.get("action")))
            if route == "webhook_deliveries":
                return _Response.json(sandbox.webhook_deliveries(query.get("action")))
            if route == "webhooks":
                return _Response.json(sandbox.webhooks())
            if route == "settings":
                return _Response.json(state.configure())
            raise SandboxError("not_found", f"No control route GET {path}")
        body = self._json()
        op_match = _CHAT_OP_PATH.match(path)
        if op_match and op_match["op"] in CHAT_OPS:
            return _Response.json(_call_with_fields(getattr(state, CHAT_OPS[op_match["op"]]), op_match["chat_id"], **body))
        handlers = {
            "faults": lambda: _call_with_fields(state.add_fault, **body),
            "tokens/expire": lambda: {"expired": _call_with_fields(state.expire_tokens, **body)},
            "webhooks": lambda: _call_with_fields(state.add_static_webhook, **body),
            "webhooks/wait": lambda: {"idle": sandbox.wait_for_webhooks(float(body.get("timeout", 10.0)))},
            "settings": lambda: _call_with_fields(state.configure, **body),
            "organizations": lambda: {"agent_token": _call_with_fields(state.add_organization, **body)},
            "oauth_tokens": lambda: _call_with_fields(state.add_oauth_token, **body) or {},
            "reset": lambda: sandbox.reset() or {},
        }
        if route not in handlers:
            raise SandboxError("not_found", f"No control route POST {path}")
        return _Response.json(handlers[route]())


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:
        # Clients that hang up (timeouts under test) are normal here; anything else is logged.
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        logger.exception("sandbox connection error from %s", client_address)


class SandboxServer:
    """A running LiveChat sandbox. `start()` serves in a daemon thread; use as a context manager too."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, webhook_timeout: float = 10.0,
                 webhook_retry_delays: tuple[float, ...] = (5.0, 15.0, 30.0), webhook_urls: list[str] | tuple = (),
                 webhook_secret: str = "", token_ttl: int = 28800):
        self.dispatcher = WebhookDispatcher()
        self.state = SandboxState(self.dispatcher, webhook_timeout=webhook_timeout,
                                  webhook_retry_delays=tuple(webhook_retry_delays), token_ttl=token_ttl)
        self._static_webhooks = [(url, webhook_secret) for url in webhook_urls]
        self._add_static_webhooks()
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.sandbox = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        host = self._httpd.server_address[0]
        host = "127.0.0.1" if host in ("0.0.0.0", "") else (f"[{host}]" if ":" in host else host)
        return f"http://{host}:{self.port}"

    def start(self) -> "SandboxServer":
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                            name="livechat-sandbox", daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread (the management command) until Ctrl-C, then shut down."""
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread = None
        self._httpd.server_close()
        self.dispatcher.clear()

    def __enter__(self) -> "SandboxServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _add_static_webhooks(self) -> None:
        for url, secret in self._static_webhooks:
            self.state.add_static_webhook(url, secret)

    # ---- the same things as the control routes ----------------------------------------------
    def reset(self) -> None:
        """Forget all organizations, chats, webhooks, faults and logs; keep the server's own webhook_urls."""
        self.state.reset()
        self._add_static_webhooks()

    def add_organization(self, organization_id: str, client_id: str, account_id: str, pat: str, *,
                         group_ids=(0,), agents: list[dict] | None = None, oauth_tokens=()) -> str:
        """Register an organization; returns its agent token (Base64 "account_id:pat")."""
        return self.state.add_organization(organization_id, client_id, account_id, pat, group_ids=group_ids,
                                           agents=agents, oauth_tokens=oauth_tokens)

    def add_webhook(self, url: str, secret_key: str, actions: list[str] | None = None) -> dict:
        """Send `actions` (all when None) of every organization to `url`, without registration."""
        return self.state.add_static_webhook(url, secret_key, actions)

    def configure(self, **settings: Any) -> dict:
        """webhook_copies, webhook_timeout, webhook_retry_delays, token_ttl."""
        return self.state.configure(**settings)

    def add_fault(self, method: str, count: int = 1, error_type: str | None = None, status: int | None = None,
                  delay: float | None = None, message: str | None = None) -> dict:
        return self.state.add_fault(method, count, error_type, status, delay, message)

    def expire_tokens(self, customer_id: str | None = None) -> int:
        return self.state.expire_tokens(customer_id)

    def chats(self) -> list[dict]:
        return self.state.list_chats()

    def chat(self, chat_id: str) -> dict:
        return self.state.chat_detail(chat_id)

    def join(self, chat_id: str, agent_id: str) -> dict:
        return self.state.join(chat_id, agent_id)

    def agent_message(self, chat_id: str, agent_id: str, text: str, visibility: str = "all") -> dict:
        return self.state.agent_message(chat_id, agent_id, text, visibility)

    def agent_file(self, chat_id: str, agent_id: str, name: str, url: str, content_type: str = "application/octet-stream",
                   size: int = 0, **extra: Any) -> dict:
        return self.state.agent_file(chat_id, agent_id, name, url, content_type, size, **extra)

    def rich_message(self, chat_id: str, agent_id: str, **fields: Any) -> dict:
        return self.state.rich_message(chat_id, agent_id, **fields)

    def note(self, chat_id: str, agent_id: str, text: str) -> dict:
        return self.state.note(chat_id, agent_id, text)

    def system_message(self, chat_id: str, text: str, system_message_type: str = "manual") -> dict:
        return self.state.system_message(chat_id, text, system_message_type)

    def transfer(self, chat_id: str, **fields: Any) -> dict:
        """group_id | agent_id, queue_position?, wait_time?, requester_id?"""
        return self.state.transfer(chat_id, **fields)

    def close(self, chat_id: str, agent_id: str | None = None, router: bool = False) -> dict:
        return self.state.close(chat_id, agent_id, router)

    def requests(self, action: str | None = None) -> list[dict]:
        return self.state.requests(action)

    def webhook_deliveries(self, action: str | None = None) -> list[dict]:
        return self.dispatcher.list(action)

    def webhooks(self) -> dict:
        with self.state.lock:
            return {"registered": [w.view() for w in self.state.webhooks.values()],
                    "static": [dict(h, secret_key="[REDACTED]") for h in self.state.static_webhooks]}

    def wait_for_webhooks(self, timeout: float = 10.0) -> bool:
        """True once every queued webhook has been delivered (or given up) within `timeout`."""
        return self.dispatcher.wait_idle(timeout)
