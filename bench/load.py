"""An open-loop paced load generator: `rate` requests per second for `duration` seconds, each sent
at its scheduled time by one of a pool of threads with keep-alive sessions, whatever the answers
before it took (so a slow server shows as latency, not as a lower rate)."""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import requests


@dataclass
class Sent:
    key: str
    scheduled: float  # time.time()
    started: float
    finished: float
    status: int | None
    error: str = ""


def paced(*, rate: float, duration: float, build, threads: int = 16) -> list[Sent]:
    """`build(i)` → (key, method, url, headers, json body); returns one Sent per request."""
    total = int(rate * duration)
    start = time.time() + 0.2
    lock = threading.Lock()
    counter = iter(range(total))
    results: list[Sent] = []

    def worker():
        session = requests.Session()
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            due = start + i / rate
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            key, method, url, headers, body = build(i)
            began = time.time()
            status, error = None, ""
            try:
                response = session.request(method, url, headers=headers, json=body, timeout=30)
                status = response.status_code
            except requests.RequestException as exc:
                error = type(exc).__name__
            sent = Sent(key, due, began, time.time(), status, error)
            with lock:
                results.append(sent)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return results


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of `values`; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1]
