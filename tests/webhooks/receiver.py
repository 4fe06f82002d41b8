"""A bot's callback endpoint for tests: a stdlib HTTP server that records every request (headers
and raw body, so signatures can be verified) and answers as scripted (`fail_next`, `delay`)."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")


class BotReceiver:
    def __init__(self):
        self.requests: list[Received] = []
        self.delay = 0.0
        self._script: list[tuple[int, bytes, dict]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hitl/callback"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # ---- scripting ----
    def fail_next(self, count: int, status: int = 500, body: bytes = b'{"error":"down"}', headers=None) -> None:
        """The next `count` requests get `status` (then 200 again)."""
        with self._lock:
            self._script.extend([(status, body, headers or {})] * count)

    # ---- reading ----
    def received(self) -> list[Received]:
        with self._lock:
            return list(self.requests)

    def payloads(self) -> list[dict]:
        return [r.json for r in self.received()]

    def of_type(self, type_: str) -> list[dict]:
        return [p for p in self.payloads() if p["type"] == type_]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            requests = self.received()
            if len(requests) >= count:
                return requests
            time.sleep(0.02)
        raise AssertionError(f"expected {count} callbacks, got {len(self.received())}: "
                             f"{[p['type'] for p in self.payloads()]}")

    # ---- server ----
    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.requests.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                    status, answer, headers = receiver._script.pop(0) if receiver._script else (200, b'{"ok":true}', {})
                    delay = receiver.delay
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass  # the console stopped waiting (timeout tests)

            def log_message(self, *args):
                pass

        return Handler

    def start(self) -> "BotReceiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def bot_receiver():
    receiver = BotReceiver().start()
    yield receiver
    receiver.stop()
