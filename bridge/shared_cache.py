"""The cache shared by all processes (Redis when configured), for the few hot counters and
flags that Django's cache API would cost several round trips or a pickle each."""
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache


def _redis(key: str):
    """Redis's own client behind the default cache, or None when the cache is something else.

    Kept on the cache object: Django builds a new client per call (the connection pool is shared,
    but building a redis-py client costs more than the command it sends).
    """
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    client = getattr(backend, "_hitl_client", None)
    if client is None:
        client = backend._hitl_client = backend._cache.get_client(key, write=True)
    return client


def count(key: str, timeout: int) -> int:
    """Adds one to a counter that expires `timeout` seconds after it was created; returns it."""
    client = _redis(key)
    if client is not None:  # one round trip: INCR, and EXPIRE NX for a new counter
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


def set_flag(key: str, timeout: int) -> bool:
    """Sets the flag unless it is set; True when this call set it."""
    client = _redis(key)
    if client is not None:
        return bool(client.set(key, 1, nx=True, ex=timeout))
    return cache.add(key, 1, timeout=timeout)


def clear_flag(key: str) -> None:
    client = _redis(key)
    if client is not None:
        client.delete(key)
    else:
        cache.delete(key)
