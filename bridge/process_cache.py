"""Rows the hot paths read on every request, kept per process for a few seconds.

Each user (integrations, API keys) clears its entries when a row is saved in the same process
(signals); a change made in another process is seen once the entry is `seconds` old.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class ProcessCache:
    def __init__(self, seconds: float, max_entries: int = 10_000):
        self.seconds = seconds
        self.max_entries = max_entries  # misses (unknown ids) are kept too: the dict stays bounded
        self._entries: dict[str, tuple[float, Any]] = {}

    def get(self, key: str, load: Callable[[], Any]) -> Any:
        """The value kept for `key` if it is fresh, else `load()` (kept, None included)."""
        now = time.monotonic()
        kept = self._entries.get(key)
        if kept is not None and now - kept[0] < self.seconds:
            return kept[1]
        value = load()
        if len(self._entries) > self.max_entries:
            self._entries.clear()
        self._entries[key] = (now, value)
        return value

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)

    def forget_values(self, matches: Callable[[Any], bool]) -> None:
        for key, (_, value) in list(self._entries.items()):
            if value is not None and matches(value):
                self._entries.pop(key, None)
