"""List filters whose choices come from the user's tenants only (one query each)."""
from __future__ import annotations

from datetime import datetime, time, timedelta

from django.contrib import admin
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_date

from bridge.models import HitlSession, Integration

from . import scoping


class TenantFilter(admin.SimpleListFilter):
    title = "tenant"
    parameter_name = "tenant"
    tenant_path = "integration__tenant"

    def lookups(self, request, model_admin):
        return [(t.slug, t.name) for t in scoping.visible_tenants(request).only("slug", "name")]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{f"{self.tenant_path}__slug": self.value()})
        return queryset


class IntegrationFilter(admin.SimpleListFilter):
    title = "integration"
    parameter_name = "integration"
    integration_path = "integration"

    def lookups(self, request, model_admin):
        integrations = scoping.scope(Integration.objects.select_related("tenant"), request, "tenant")
        tenant = request.GET.get("tenant")
        if tenant:
            integrations = integrations.filter(tenant__slug=tenant)
        return [(str(i.pk), f"{i.tenant.name} / {i.name}") for i in integrations.only("id", "name", "tenant__name")]

    def queryset(self, request, queryset):
        if self.value():
            try:
                return queryset.filter(**{f"{self.integration_path}_id": self.value()})
            except Exception:  # not a UUID: nothing matches
                return queryset.none()
        return queryset


class StatusFilter(admin.SimpleListFilter):
    """The statuses, plus "open" (pending, waiting or assigned): what still needs someone."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("open", "Open (not closed yet)"), *HitlSession.Status.choices]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "open":
            return queryset.filter(status__in=HitlSession.OPEN_STATUSES)
        if value in HitlSession.Status.values:
            return queryset.filter(status=value)
        return queryset


class AgentFilter(admin.SimpleListFilter):
    """The agents who handled the user's tenants' sessions (a DISTINCT over one indexed scan)."""

    title = "agent"
    parameter_name = "agent"
    MAX_CHOICES = 200

    def lookups(self, request, model_admin):
        agents = (
            scoping.scope(HitlSession.objects.all(), request, "integration__tenant")
            .exclude(agent_id="")
            .order_by("agent_name", "agent_id")
            .values_list("agent_id", "agent_name")
            .distinct()[: self.MAX_CHOICES]
        )
        return [(agent_id, f"{name} ({agent_id})" if name else agent_id) for agent_id, name in agents]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(agent_id=self.value())
        return queryset


class DateRangeFilter(admin.ListFilter):
    """Started between two dates (inclusive, UTC), as ?created_from=YYYY-MM-DD&created_to=…"""

    title = "date started"
    template = "dashboard/admin/date_range_filter.html"
    field_name = "created_at"
    param_from = "created_from"
    param_to = "created_to"

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        for name in (self.param_from, self.param_to):
            if name in params:
                value = params.pop(name)
                self.used_parameters[name] = value[-1] if isinstance(value, list) else value
        self.date_from = parse_date(self.used_parameters.get(self.param_from) or "") if self._valid(self.param_from) else None
        self.date_to = parse_date(self.used_parameters.get(self.param_to) or "") if self._valid(self.param_to) else None

    def _valid(self, name):
        try:
            return bool(parse_date(self.used_parameters.get(name) or ""))
        except ValueError:
            return False

    def has_output(self):
        return True

    def expected_parameters(self):
        return [self.param_from, self.param_to]

    def choices(self, changelist):
        # The template renders a small GET form; other filters travel as hidden inputs.
        hidden = [
            (key, value)
            for key, values in changelist.filter_params.items()
            if key not in self.expected_parameters()
            for value in (values if isinstance(values, list) else [values])
        ]
        yield {
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "hidden": hidden,
            "clear_url": changelist.get_query_string(remove=self.expected_parameters()),
            "active": bool(self.date_from or self.date_to),
        }

    def bounds(self):
        start = timezone.make_aware(datetime.combine(self.date_from, time.min)) if self.date_from else None
        end = timezone.make_aware(datetime.combine(self.date_to + timedelta(days=1), time.min)) if self.date_to else None
        return start, end

    def queryset(self, request, queryset):
        start, end = self.bounds()
        q = Q()
        if start:
            q &= Q(**{f"{self.field_name}__gte": start})
        if end:
            q &= Q(**{f"{self.field_name}__lt": end})
        return queryset.filter(q)


class AuditTenantFilter(TenantFilter):
    tenant_path = "tenant"


class CreatedRangeFilter(DateRangeFilter):
    title = "date created"
