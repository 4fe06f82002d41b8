"""Webhook delivery for the sandbox, the way LiveChat does it.

One FIFO queue per chat, drained by its own short-lived thread: webhooks of one chat arrive in
order, and a slow receiver for one chat does not hold up the others. Each delivery waits
`timeout` for an HTTP 200; anything else is retried after each of `retry_delays` (LiveChat: up to
3 retries within about a minute). `copies` > 1 sends the same envelope again, as LiveChat's
redelivery sometimes does. Every attempt is recorded for `GET /_sandbox/webhook_deliveries`.
"""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from datetime import datetime, timezone

# Never route webhooks through an environment proxy: receivers are local test servers.
LOG_LIMIT = 5000  # delivery attempts kept

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class WebhookDispatcher:
    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._queues: dict[str, deque] = {}
        self._pending = 0  # queued or in flight
        self._generation = 0  # bumped by clear(): late results of old work are dropped
        self.deliveries: list[dict] = []

    def enqueue(self, key: str, url: str, envelope: dict, *, copies: int, timeout: float,
                retry_delays: tuple[float, ...]) -> None:
        # Serialize now: the payload may reference sandbox state that changes later.
        job = {"url": url, "body": json.dumps(envelope).encode(), "envelope": envelope, "copies": max(1, copies),
               "timeout": timeout, "retry_delays": retry_delays}
        with self._lock:
            self._pending += 1
            queue = self._queues.get(key)
            if queue is not None:
                queue.append(job)  # a drainer is already running for this chat
                return
            self._queues[key] = deque([job])
            generation = self._generation
        threading.Thread(target=self._drain, args=(key, generation), name=f"sandbox-webhooks-{key}",
                         daemon=True).start()

    def _drain(self, key: str, generation: int) -> None:
        while True:
            with self._lock:
                queue = self._queues.get(key)
                if generation != self._generation or not queue:
                    if generation == self._generation:
                        self._queues.pop(key, None)
                    return
                job = queue[0]
            try:
                self._deliver(job, generation)
            finally:
                with self._lock:
                    if generation == self._generation:
                        queue.popleft()
                        self._pending -= 1
                        self._lock.notify_all()

    def _deliver(self, job: dict, generation: int) -> None:
        envelope = job["envelope"]
        for copy in range(1, job["copies"] + 1):
            delays = list(job["retry_delays"])
            attempt = 0
            while True:
                if generation != self._generation:
                    return  # the sandbox was reset: stop sending stale webhooks
                attempt += 1
                status, error, started = None, None, time.monotonic()
                try:
                    request = urllib.request.Request(job["url"], data=job["body"], method="POST", headers={
                        "Content-Type": "application/json", "User-Agent": "LiveChat-Sandbox-Webhooks/1.0"})
                    with _opener.open(request, timeout=job["timeout"]) as response:
                        status = response.status
                        response.read(65536)
                except urllib.error.HTTPError as exc:
                    status = exc.code
                except TimeoutError:
                    error = "timeout"
                except (urllib.error.URLError, OSError) as exc:
                    reason = getattr(exc, "reason", exc)
                    error = "timeout" if isinstance(reason, TimeoutError) else f"connection: {type(reason).__name__}"
                with self._lock:
                    if generation != self._generation:
                        return
                    self.deliveries.append({
                        "webhook_id": envelope["webhook_id"], "action": envelope["action"], "url": job["url"],
                        "chat_id": _chat_id(envelope["payload"]), "copy": copy, "attempt": attempt,
                        "status": status, "error": error, "ok": status == 200,
                        "duration_ms": round((time.monotonic() - started) * 1000),
                        "at": datetime.now(timezone.utc).isoformat(), "envelope": envelope,
                    })
                    del self.deliveries[:-LOG_LIMIT]
                if status == 200 or not delays:
                    break
                time.sleep(delays.pop(0))

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every queued webhook has been delivered or given up; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
            return True

    def clear(self) -> None:
        """Forget queued work and the delivery log (in-flight attempts finish unrecorded)."""
        with self._lock:
            self._generation += 1
            self._queues.clear()
            self._pending = 0
            self.deliveries = []
            self._lock.notify_all()

    def list(self, action: str | None = None) -> list[dict]:
        with self._lock:
            return [dict(d) for d in self.deliveries if action in (None, d["action"])]


def _chat_id(payload: dict) -> str | None:
    return payload.get("chat_id") or payload.get("id") or (payload.get("chat") or {}).get("id")
