"""Per-API-key rate limit: a fixed-window counter in Django's cache.

Several web processes sharing Redis count together, in one round trip per request
(`bridge.shared_cache.count`); with the default local-memory cache each process counts alone.
The rate is API_RATE_LIMIT, like "600/min" (periods: s, min, h, day).
"""
import math
import time

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from bridge import shared_cache

DEFAULT_RATE = "600/min"
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """"600/min" → (600, 60). Raises ValueError for anything else."""
    count, _, period = rate.partition("/")
    seconds = _PERIODS.get(period.strip()[:1].lower())
    if not count.strip().isdigit() or seconds is None:
        raise ValueError(f"API_RATE_LIMIT: expected like 600/min, got {rate!r}")
    return int(count), seconds


class ApiKeyRateThrottle(BaseThrottle):
    timer = time.time

    def allow_request(self, request, view):
        api_key = getattr(request, "auth", None)
        rate = getattr(settings, "API_RATE_LIMIT", DEFAULT_RATE)
        if api_key is None or not rate:
            return True
        limit, period = parse_rate(rate)
        now = self.timer()
        window = int(now // period)
        self._wait = (window + 1) * period - now
        key = f"hitl:throttle:{api_key.prefix}:{period}:{window}"
        return shared_cache.count(key, period + 1) <= limit

    def wait(self):
        return max(1, math.ceil(self._wait))

