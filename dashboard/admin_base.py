"""The tenant-scoping ModelAdmin and small helpers the console's admin pages share.

Roles decide (dashboard.scoping), not Django's model permissions: members see their tenants'
rows, managers may change them, superusers everything. A row of another tenant is not in the
queryset, so its URL is a 404 — never its data, never a 403 that says it exists.
"""
from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from bridge.models import Integration, Tenant

from . import scoping


class ConsoleMedia:
    css = {"all": ["dashboard/console.css"]}
    js = ["dashboard/console.js"]


class TenantScopedAdmin(admin.ModelAdmin):
    """A ModelAdmin whose rows belong to a tenant through `tenant_path`."""

    tenant_path = "tenant"
    # What managers may do on their tenants' rows; superusers may always, where it exists at all.
    managers_add = True
    managers_change = True
    managers_delete = False
    addable = True
    changeable = True
    deletable = True
    show_facets = admin.ShowFacets.NEVER
    Media = ConsoleMedia
    changelist_title = None  # the list page's heading, instead of "Select … to change"

    def changelist_view(self, request, extra_context=None):
        if self.changelist_title:
            extra_context = {"title": self.changelist_title, **(extra_context or {})}
        return super().changelist_view(request, extra_context)

    # ---- scoping
    def get_queryset(self, request):
        return scoping.scope(super().get_queryset(request), request, self.tenant_path)

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} matches the given query.")
        return obj

    def tenant_id_of(self, obj) -> int | None:
        return scoping.tenant_id_of(obj, self.tenant_path)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Tenant:
            kwargs["queryset"] = scoping.managed_tenants(request)
        elif db_field.related_model is Integration:
            kwargs["queryset"] = scoping.scope(
                Integration.objects.select_related("tenant"), request, "tenant", manage=True
            )
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is not None and hasattr(field.widget, "can_change_related"):
            # No pencil/eye/plus beside a tenant or integration choice: those pages are elsewhere.
            field.widget.can_add_related = field.widget.can_change_related = False
            field.widget.can_view_related = field.widget.can_delete_related = False
        return field

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Adding shows a page of one-time secrets, so "save and add another/continue" make no sense.
        extra_context = {"show_save_and_add_another": False, "show_save_and_continue": bool(object_id),
                         **(extra_context or {})}
        return super().changeform_view(request, object_id, form_url, extra_context)

    # ---- roles
    def has_module_permission(self, request):
        return scoping.has_any_tenant(request)

    def has_view_permission(self, request, obj=None):
        if obj is None:
            return scoping.has_any_tenant(request)
        return scoping.can_view(request, self.tenant_id_of(obj))

    def has_add_permission(self, request):
        if not self.addable:
            return False
        if scoping.is_superuser(request):
            return True
        return self.managers_add and scoping.manages_any_tenant(request)

    def has_change_permission(self, request, obj=None):
        if not self.changeable:
            return False
        if scoping.is_superuser(request):
            return True
        if not self.managers_change:
            return False
        if obj is None:
            return scoping.manages_any_tenant(request)
        return scoping.can_manage(request, self.tenant_id_of(obj))

    def has_delete_permission(self, request, obj=None):
        if not self.deletable:
            return False
        if scoping.is_superuser(request):
            return True
        if not self.managers_delete:
            return False
        if obj is None:
            return scoping.manages_any_tenant(request)
        return scoping.can_manage(request, self.tenant_id_of(obj))

    def get_deleted_objects(self, objs, request):
        """A superuser deleting a row may delete what cascades with it (sessions, keys, callbacks),
        though those have no delete page of their own."""
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        if scoping.is_superuser(request):
            perms_needed = set()
        return deleted, model_count, perms_needed, protected

    def can_manage(self, request, obj) -> bool:
        """May the user act (test, register, revoke, stop, redeliver…) on this row?"""
        return scoping.can_manage(request, self.tenant_id_of(obj))

    # ---- helpers for the console's own views on an object
    def object_for_action(self, request, object_id):
        """The row for a POST action: 405 unless POST, 404 outside the user's tenants, 403 for a viewer."""
        if request.method != "POST":
            raise MethodNotAllowed()
        obj = self.get_object(request, object_id)
        if not self.can_manage(request, obj):
            raise PermissionDenied
        return obj

    def object_for_read(self, request, object_id):
        obj = self.get_object(request, object_id)
        if not self.has_view_permission(request, obj):
            raise PermissionDenied
        return obj

    def change_url(self, obj) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk])

    def redirect_back(self, request, default: str) -> HttpResponseRedirect:
        target = request.POST.get("next") or request.GET.get("next")
        if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
            return HttpResponseRedirect(target)
        return HttpResponseRedirect(default)

    def console_view(self, view):
        """Wrap a view of this admin: staff login, 405 for a wrong method, no caching."""
        wrapped = self.admin_site.admin_view(view)

        def inner(request, *args, **kwargs):
            try:
                return wrapped(request, *args, **kwargs)
            except MethodNotAllowed:
                return HttpResponseNotAllowed(["POST"])

        inner.__name__ = getattr(view, "__name__", "console_view")
        return inner


class MethodNotAllowed(Exception):
    pass


class SuperuserOnlyAdmin(admin.ModelAdmin):
    """Tenants' members, roles and the like: for superusers only."""

    show_facets = admin.ShowFacets.NEVER
    Media = ConsoleMedia

    def has_module_permission(self, request):
        return scoping.is_superuser(request)

    def has_view_permission(self, request, obj=None):
        return scoping.is_superuser(request)

    def has_add_permission(self, request, *args):
        return scoping.is_superuser(request)

    def has_change_permission(self, request, obj=None):
        return scoping.is_superuser(request)

    def has_delete_permission(self, request, obj=None):
        return scoping.is_superuser(request)


def one_time_secrets_response(request, admin_site, *, title, intro, secrets, back_url, back_label, extra=None):
    """A page that shows freshly made secrets once. It is the answer to the POST that made them
    (no redirect, nothing kept in the session) and is never cached."""
    context = {
        **admin_site.each_context(request),
        "title": title,
        "intro": intro,
        "secrets": secrets,
        "back_url": back_url,
        "back_label": back_label,
        **(extra or {}),
    }
    response = TemplateResponse(request, "dashboard/admin/one_time_secrets.html", context)
    response["Cache-Control"] = "no-store"
    return response
