"""pytest fixtures for the LiveChat sandbox.

- `livechat_sandbox_server` (session): one running SandboxServer with fast webhook retries.
- `sandbox`: that server, reset for this test.
- `sandbox_org`: an organization in it (ids, agent token, groups, agents, agent OAuth token).
- `livechat_config`: a LiveChatConfig pointing at the sandbox for `sandbox_org`.
- `livechat_settings`: Django settings LIVECHAT_API_URL/LIVECHAT_ACCOUNTS_URL pointed at the sandbox.
- `webhook_receiver`: a tiny HTTP server recording POSTs, with scripted answers.
No Django import here, so the fixtures also work with `-p no:django`.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bridge.livechat import LiveChatConfig
from bridge.livechat.sandbox import SandboxServer


@dataclass(frozen=True)
class SandboxOrg:
    organization_id: str
    client_id: str
    account_id: str
    pat: str
    agent_token: str  # Base64 "account_id:pat", what the admin pastes
    group_ids: list[int]
    agent_ids: list[str]
    agent_oauth_token: str
    redirect_uri: str = "https://console.example.com/"


@pytest.fixture(scope="session")
def livechat_sandbox_server():
    server = SandboxServer(webhook_timeout=2.0, webhook_retry_delays=(0.1, 0.1, 0.1)).start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(livechat_sandbox_server):
    livechat_sandbox_server.reset()
    yield livechat_sandbox_server
    livechat_sandbox_server.reset()  # stop retrying this test's webhooks


@pytest.fixture
def sandbox_org(sandbox) -> SandboxOrg:
    agents = [{"id": "smith@example.com", "name": "John Smith", "avatar": "https://cdn.example.com/smith.png"},
              {"id": "jane@example.com", "name": "Jane Doe"}]
    org = dict(organization_id="sandbox-org-1", client_id="sandbox-client-1", account_id="smith@example.com",
               pat="pat-sandbox-secret-0001", group_ids=[0, 5])
    token = sandbox.add_organization(org["organization_id"], org["client_id"], org["account_id"], org["pat"],
                                     group_ids=org["group_ids"], agents=agents,
                                     oauth_tokens=["agent-oauth-sandbox-secret"])
    return SandboxOrg(**org, agent_token=token, agent_ids=[a["id"] for a in agents],
                      agent_oauth_token="agent-oauth-sandbox-secret")


@pytest.fixture
def livechat_config(sandbox, sandbox_org) -> LiveChatConfig:
    return LiveChatConfig(
        api_url=sandbox.url, accounts_url=sandbox.url, api_version="3.6", client_id=sandbox_org.client_id,
        organization_id=sandbox_org.organization_id, agent_token=sandbox_org.agent_token,
        redirect_uri=sandbox_org.redirect_uri, timeout=2.0,
    )


@pytest.fixture
def livechat_settings(request, sandbox):
    """Django's LIVECHAT_* settings pointed at the sandbox (needs pytest-django's `settings`)."""
    settings = request.getfixturevalue("settings")
    settings.LIVECHAT_API_URL = sandbox.url
    settings.LIVECHAT_ACCOUNTS_URL = sandbox.url
    settings.LIVECHAT_API_VERSION = "3.6"
    return settings


@dataclass
class WebhookReceiver:
    """Records every POST body; answers with `statuses` in turn (then 200), after `delay` seconds."""

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    delay: float = 0.0
    received: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} webhooks, got {len(self.received)}")

    def actions(self) -> list[str]:
        with self.lock:
            return [r["action"] for r in self.received]


@pytest.fixture
def webhook_receiver():
    receiver = WebhookReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with receiver.lock:
                receiver.received.append(json.loads(body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                delay = receiver.delay
            time.sleep(delay)
            try:
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:
                pass  # the sandbox stopped waiting

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/webhook"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
