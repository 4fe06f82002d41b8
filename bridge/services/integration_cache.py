"""Integrations as the hot paths read them: every webhook names one, every callback is sent
with one. Reading a row (and decrypting its three secrets) each time was a query and three
Fernet decryptions per event, so each process keeps what it read for a few seconds.

A change saved in this process is seen at once (the signal below); one saved elsewhere within
`CACHE_SECONDS` (a disabled integration stops answering webhooks, a new webhook secret is
accepted, a callback goes to the new URL): LiveChat's webhook retries and our callback retries
cover the gap.
"""
from __future__ import annotations

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from bridge.models import Integration
from bridge.process_cache import ProcessCache

CACHE_SECONDS = 5.0
_cache = ProcessCache(CACHE_SECONDS)


def cached_integration(integration_id) -> Integration | None:
    """The integration with this id, enabled or not, or None; at most CACHE_SECONDS old."""
    return _cache.get(str(integration_id), lambda: Integration.objects.filter(pk=integration_id).first())


def forget(integration_id) -> None:
    _cache.forget(str(integration_id))


@receiver([post_save, post_delete], sender=Integration, dispatch_uid="integration-cache-forget")
def _forget_saved(sender, instance, **kwargs):
    forget(instance.pk)
