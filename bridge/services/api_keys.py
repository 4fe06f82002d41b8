"""Bot API keys: random, shown once, kept as a SHA-256 hash and found by a readable prefix."""
import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from bridge.models import ApiKey, Integration
from bridge.process_cache import ProcessCache

KEY_PREFIX = "hitl_"
_LOOKUP = re.compile(r"[0-9a-f]{12}")
# Writing last_used_at on every request would turn each read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


# Every bot API call authenticates; each process keeps the keys it read (with their integration)
# for a few seconds. Revoking a key, or disabling or deleting its integration, takes effect at
# once in the process that saved it (the signals below) and within this many seconds elsewhere.
KEY_CACHE_SECONDS = 5.0
_keys = ProcessCache(KEY_CACHE_SECONDS)


def _key_with_prefix(prefix: str) -> ApiKey | None:
    return _keys.get(prefix, lambda: (
        ApiKey.objects.select_related("integration", "integration__tenant").filter(prefix=prefix).first()
    ))


@receiver([post_save, post_delete], sender=ApiKey, dispatch_uid="api-keys-forget-key")
def _forget_key(sender, instance, **kwargs):
    _keys.forget(instance.prefix)


@receiver([post_save, post_delete], sender=Integration, dispatch_uid="api-keys-forget-integration")
def _forget_integrations_keys(sender, instance, **kwargs):
    _keys.forget_values(lambda api_key: api_key.integration_id == instance.pk)


def _hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def create_api_key(*, integration: Integration, name: str = "bot") -> tuple[ApiKey, str]:
    """Returns the stored key and the raw key, which is never available again."""
    lookup = secrets.token_hex(6)
    raw_key = f"{KEY_PREFIX}{lookup}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(
        integration=integration, name=name, prefix=f"{KEY_PREFIX}{lookup}", key_hash=_hash(raw_key)
    )
    return api_key, raw_key


def authenticate_api_key(raw_key: str) -> ApiKey | None:
    """The active key matching `raw_key`, or None. Records when it was last used."""
    if not raw_key.startswith(KEY_PREFIX):
        return None
    lookup, sep, _ = raw_key[len(KEY_PREFIX) :].partition("_")
    if not sep or not _LOOKUP.fullmatch(lookup):
        return None
    prefix = KEY_PREFIX + lookup
    api_key = _key_with_prefix(prefix)
    if api_key is None or not hmac.compare_digest(api_key.key_hash, _hash(raw_key)):
        return None
    if not api_key.is_active or not api_key.integration.enabled:
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


def revoke_api_key(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key
