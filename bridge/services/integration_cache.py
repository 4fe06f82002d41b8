"""Integrations as the hot paths read them: every webhook names one, every callback is sent
with one. Reading a row (and decrypting its three secrets) each time was a query and three
Fernet decryptions per event, so each process keeps what it read for a few seconds.

A change saved in this process is seen at once (the signal below); one saved elsewhere within
`CACHE_SECONDS` (a disabled integration stops answering webhooks, a new webhook secret is
accepted, a callback goes to the new URL): LiveChat's webhook retries and our callback retries
cover the gap.
"""
from __future__ import annotations

import time

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from bridge.models import Integration

CACHE_SECONDS = 5.0
_MAX_ENTRIES = 10_000  # unknown ids are cached too; keep the dict bounded
_cache: dict[str, tuple[float, Integration | None]] = {}


def cached_integration(integration_id) -> Integration | None:
    """The integration with this id, enabled or not, or None; at most CACHE_SECONDS old."""
    key, now = str(integration_id), time.monotonic()
    cached = _cache.get(key)
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    integration = Integration.objects.filter(pk=integration_id).first()
    if len(_cache) > _MAX_ENTRIES:
        _cache.clear()
    _cache[key] = (now, integration)
    return integration


def forget(integration_id) -> None:
    _cache.pop(str(integration_id), None)


@receiver([post_save, post_delete], sender=Integration, dispatch_uid="integration-cache-forget")
def _forget_saved(sender, instance, **kwargs):
    forget(instance.pk)
