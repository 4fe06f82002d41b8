"""Writes the console's audit trail (dashboard.models.ConsoleAuditEntry).

Only field *names* are recorded. A secret field that changed is named like any other; its value
is never passed here, so it cannot end up in the trail.
"""
from __future__ import annotations

from collections.abc import Iterable

from .models import ConsoleAuditEntry

Action = ConsoleAuditEntry.Action


def record(
    *,
    request,
    action: str,
    tenant=None,
    obj=None,
    object_type: str = "",
    object_repr: str = "",
    changed_fields: Iterable[str] = (),
    detail: str = "",
) -> ConsoleAuditEntry:
    user = request.user if request.user.is_authenticated else None
    return ConsoleAuditEntry.objects.create(
        tenant=tenant,
        user=user,
        username=user.get_username() if user else "",
        action=action,
        object_type=object_type or (obj._meta.verbose_name if obj is not None else ""),
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=(object_repr or (str(obj) if obj is not None else ""))[:200],
        changed_fields=sorted(set(changed_fields)),
        detail=detail[:500],
    )
