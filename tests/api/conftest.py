"""Fixtures for the bot API: an integration wired to the LiveChat sandbox and a bot client."""
import pytest
from rest_framework.test import APIClient

from bridge.models import HitlSession
from bridge.services import sessions as sessions_service
from tests.conftest import make_integration

GROUP_ID = 5


class Bot:
    """A bot holding one API key, speaking JSON to /api/v1/."""

    def __init__(self, bundle):
        self.bundle = bundle
        self.integration = bundle.integration
        self.client = APIClient()
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {bundle.api_key}")

    def post(self, path, body=None, **headers):
        return self.client.post(f"/api/v1/{path}", body if body is not None else {}, format="json", **headers)

    def get(self, path, **params):
        return self.client.get(f"/api/v1/{path}", params)

    def start(self, conversation_id="conv-1", **body):
        body.setdefault("user", {"external_id": "u-1", "name": "Ada Lovelace", "email": "ada@example.com"})
        response = self.post("sessions", {"conversation_id": conversation_id, **body})
        assert response.status_code == 201, response.json()
        return response.json()

    def send(self, session_id, text, **fields):
        """Fields named HTTP_… are headers; the rest go into the body."""
        headers = {k: v for k, v in fields.items() if k.startswith("HTTP_")}
        body = {k: v for k, v in fields.items() if not k.startswith("HTTP_")}
        return self.post(f"sessions/{session_id}/messages", {"type": "text", "text": text, **body}, **headers)


@pytest.fixture
def lc(livechat_settings, sandbox, sandbox_org, settings):
    """Settings pointed at the sandbox, fast retries, and a short in-request LiveChat budget."""
    settings.LIVECHAT_RETRY_SCHEDULE = [0, 0, 0]
    return sandbox


@pytest.fixture
def short_budget(monkeypatch):
    monkeypatch.setattr(sessions_service, "LIVECHAT_BUDGET_SECONDS", 1.0)


@pytest.fixture
def bot(db, lc, sandbox_org):
    return Bot(make_integration(
        "acme", "main",
        client_id=sandbox_org.client_id,
        organization_id=sandbox_org.organization_id,
        agent_token=sandbox_org.agent_token,
        group_id=GROUP_ID,
    ))


@pytest.fixture
def outsider(db):
    """Another tenant's bot (its integration points nowhere useful: it must never get that far)."""
    return Bot(make_integration("globex", "main"))


def customer_texts(sandbox, chat_id):
    """Texts of the customer's events in the chat's threads, in order."""
    chat = sandbox.chat(chat_id)
    customer_id = next(u["id"] for u in chat["users"] if u["type"] == "customer")
    return [
        event.get("text") if event["type"] == "message" else event
        for thread in chat["threads"]
        for event in thread["events"]
        if event.get("author_id") == customer_id
    ]


def session_of(body) -> HitlSession:
    return HitlSession.objects.get(pk=body["id"])


class MediaServer:
    """A tiny HTTP server for the media a bot links to: path → (status, content type, body, headers)."""

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.routes = {}
        self.hits = []
        self.written = {}  # path → bytes the server managed to write
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits.append(self.path)
                status, content_type, body, headers, declare_length = server.routes.get(
                    self.path, (404, "text/plain", b"not here", {}, True)
                )
                server.written[self.path] = 0
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    if declare_length:
                        self.send_header("Content-Length", str(len(body)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    for start in range(0, len(body), 65536):
                        self.wfile.write(body[start:start + 65536])
                        server.written[self.path] += len(body[start:start + 65536])
                except OSError:
                    pass  # the client stopped reading (the size cap)

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def serve(self, path, body, content_type="application/octet-stream", status=200, declare_length=True, **headers):
        """Without `declare_length` the body is close-delimited (no Content-Length)."""
        self.routes[path] = (status, content_type, body, headers, declare_length)
        return self.url + path

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def media_server():
    server = MediaServer()
    yield server
    server.stop()
