"""Per-API-key rate limit: a fixed-window counter in Django's cache.

With Redis as the cache, one round trip per request (INCR, and EXPIRE NX for a new window) on
Redis's own client: Django's `cache.add` + `cache.incr` took three. Other caches use those two;
they are atomic in memcached too, and with the default local-memory cache each process counts
alone.
The rate is API_RATE_LIMIT, like "600/min" (periods: s, min, h, day).
"""
import math
import time

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.throttling import BaseThrottle

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
        return _count(key, period + 1) <= limit

    def wait(self):
        return max(1, math.ceil(self._wait))


def _count(key: str, timeout: int) -> int:
    """Adds one to the window's counter and returns it."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        client = backend._cache.get_client(key, write=True)
        pipe = client.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, timeout, nx=True)
        return int(pipe.execute()[0])
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=timeout)
        return 1
