"""Bot users (EndUser): created or updated by the bot's own id, always within one integration."""
from __future__ import annotations

from django.db import IntegrityError, transaction

from bridge.models import EndUser, Integration

from .errors import NotFound


def upsert_user(
    *,
    integration: Integration,
    external_id: str,
    name: str | None = None,
    email: str | None = None,
    picture_url: str | None = None,
) -> tuple[EndUser, bool]:
    """The integration's user with `external_id`, created if new; given fields (not None) are
    updated on an existing user. Returns (user, created)."""
    given = {key: value for key, value in {"name": name, "email": email, "picture_url": picture_url}.items()
             if value is not None}
    user = EndUser.objects.filter(integration=integration, external_id=external_id).first()
    if user is None:
        try:
            with transaction.atomic():
                return EndUser.objects.create(integration=integration, external_id=external_id, **given), True
        except IntegrityError:  # created meanwhile by a concurrent request
            user = EndUser.objects.get(integration=integration, external_id=external_id)
    changed = [key for key, value in given.items() if getattr(user, key) != value]
    if changed:
        for key in changed:
            setattr(user, key, given[key])
        user.save(update_fields=[*changed, "updated_at"])
    return user, False


def get_user(*, integration: Integration, user_id: int) -> EndUser:
    """The integration's user `user_id`; NotFound for anyone else's (never a hint that it exists)."""
    user = EndUser.objects.filter(integration=integration, pk=user_id).select_related("integration").first()
    if user is None:
        raise NotFound(f"no user with id {user_id}; create one with POST /api/v1/users")
    return user
