"""Who may see and change which tenant's data in the console.

Roles decide, not Django's model permissions: a staff user sees the tenants they are a member
of (viewer: read; manager: configure); a superuser sees and configures everything. The roles
are read once per request and kept on it.
"""
from __future__ import annotations

from django.db.models import Q, QuerySet

from bridge.models import Membership, Tenant

MANAGER = Membership.Role.MANAGER


def is_superuser(request) -> bool:
    user = request.user
    return bool(user.is_active and user.is_staff and user.is_superuser)


def roles(request) -> dict[int, str]:
    """tenant id → role for the request's user (empty for anyone not active staff)."""
    cached = getattr(request, "_console_roles", None)
    if cached is None:
        user = request.user
        if user.is_active and user.is_staff:
            cached = dict(Membership.objects.filter(user=user).values_list("tenant_id", "role"))
        else:
            cached = {}
        request._console_roles = cached
    return cached


def visible_tenant_ids(request) -> set[int] | None:
    """The tenants the user may read; None means all (superuser)."""
    if is_superuser(request):
        return None
    return set(roles(request))


def managed_tenant_ids(request) -> set[int] | None:
    """The tenants the user may configure; None means all (superuser)."""
    if is_superuser(request):
        return None
    return {tenant_id for tenant_id, role in roles(request).items() if role == MANAGER}


def has_any_tenant(request) -> bool:
    return is_superuser(request) or bool(roles(request))


def manages_any_tenant(request) -> bool:
    return is_superuser(request) or any(role == MANAGER for role in roles(request).values())


def can_view(request, tenant_id: int | None) -> bool:
    if is_superuser(request):
        return True
    return tenant_id is not None and tenant_id in roles(request)


def can_manage(request, tenant_id: int | None) -> bool:
    if is_superuser(request):
        return True
    return tenant_id is not None and roles(request).get(tenant_id) == MANAGER


def scope(queryset: QuerySet, request, tenant_path: str, *, manage: bool = False) -> QuerySet:
    """`queryset` limited to the user's tenants; `tenant_path` leads from the model to Tenant
    ("" for Tenant itself, "integration__tenant", …)."""
    ids = managed_tenant_ids(request) if manage else visible_tenant_ids(request)
    if ids is None:
        return queryset
    lookup = f"{tenant_path}__in" if tenant_path else "pk__in"
    return queryset.filter(Q(**{lookup: ids}))


def visible_tenants(request) -> QuerySet:
    return scope(Tenant.objects.all(), request, "")


def managed_tenants(request) -> QuerySet:
    return scope(Tenant.objects.all(), request, "", manage=True)


def tenant_id_of(obj, tenant_path: str) -> int | None:
    """The tenant id an object belongs to, following `tenant_path` (no query when the path's
    objects are already loaded or only the last hop's `_id` is needed)."""
    if not tenant_path:
        return obj.pk
    *hops, last = tenant_path.split("__")
    for hop in hops:
        obj = getattr(obj, hop, None)
        if obj is None:
            return None
    return getattr(obj, f"{last}_id", None)
