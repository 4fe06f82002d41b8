"""The staff console on Django admin: every registration of the project's models lives here.

Pages stay thin: reads come from dashboard.selectors, writes go through bridge.services, and the
console's own audit trail through dashboard.audit.
"""
from __future__ import annotations


from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join

from bridge.livechat import LiveChatError
from bridge.models import ApiKey, Delivery, HitlSession, Integration, Membership, Tenant
from bridge.services import api_keys as api_key_service
from bridge.services import callbacks as callback_service
from bridge.services import integrations as integration_service
from bridge.services import livechat_setup
from bridge.services import sessions as session_service
from bridge.services.errors import ServiceError

from . import audit, exports, scoping, selectors
from .admin_base import SuperuserOnlyAdmin, TenantScopedAdmin, one_time_secrets_response
from .filters import (
    AgentFilter,
    AuditTenantFilter,
    CreatedRangeFilter,
    DateRangeFilter,
    IntegrationFilter,
    StatusFilter,
    TenantFilter,
)
from .forms import ApiKeyForm, IntegrationForm, TenantForm, masked
from .models import ConsoleAuditEntry
from .templatetags.console import duration, status_pill

admin.site.site_header = "HITL console"
admin.site.site_title = "HITL console"
admin.site.index_title = "Overview"
admin.site.site_url = None  # no "View site": the console is the site
admin.site.empty_value_display = "—"


def short_time(value):
    return date_format(timezone.localtime(value), "M j, H:i") if value else None


def _staff_actor(request) -> str:
    return f"staff:{request.user.get_username()}"


# ---------------------------------------------------------------------------------------------
# Tenants and memberships


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    verbose_name = "member"
    verbose_name_plural = "members (staff users and their role in this tenant)"

    def has_view_permission(self, request, obj=None):
        return scoping.is_superuser(request)

    def has_add_permission(self, request, obj=None):
        return scoping.is_superuser(request)

    def has_change_permission(self, request, obj=None):
        return scoping.is_superuser(request)

    def has_delete_permission(self, request, obj=None):
        return scoping.is_superuser(request)


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin):
    tenant_path = ""
    form = TenantForm
    changelist_title = "Tenants"
    managers_add = False
    list_display = ("name", "slug", "retention", "integrations_count")
    search_fields = ("name", "slug")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_integrations=Count("integrations"))

    def get_inlines(self, request, obj):
        return [MembershipInline] if scoping.is_superuser(request) else []

    def get_readonly_fields(self, request, obj=None):
        return () if scoping.is_superuser(request) else ("slug",)

    @admin.display(description="transcripts kept", ordering="transcript_retention_days")
    def retention(self, obj):
        return f"{obj.transcript_retention_days} days" if obj.transcript_retention_days else "forever"

    @admin.display(description="integrations", ordering="n_integrations")
    def integrations_count(self, obj):
        return obj.n_integrations

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and form.changed_data:
            audit.record(request=request, action=audit.Action.TENANT_CHANGED, tenant=obj, obj=obj,
                         changed_fields=form.changed_data)


@admin.register(Membership)
class MembershipAdmin(SuperuserOnlyAdmin):
    list_display = ("user", "tenant", "role")
    list_filter = ("role", "tenant")
    search_fields = ("user__username", "user__email", "tenant__name")
    list_select_related = ("user", "tenant")


# ---------------------------------------------------------------------------------------------
# Integrations


@admin.register(Integration)
class IntegrationAdmin(TenantScopedAdmin):
    form = IntegrationForm
    change_form_template = "dashboard/admin/integration_change_form.html"
    changelist_title = "LiveChat integrations"
    list_display = ("name", "tenant", "organization_id", "group_id", "webhooks_status", "active_keys", "enabled")
    list_filter = (("tenant", admin.RelatedOnlyFieldListFilter), "enabled")
    list_select_related = ("tenant",)
    search_fields = ("name", "organization_id", "client_id", "tenant__name")
    managers_delete = False  # disabling keeps the history; deleting drops every session with it

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(n_active_keys=Count("api_keys", filter=Q(api_keys__revoked_at__isnull=True)))
        )

    # ---- form layout: secrets are inputs for managers and masked text for everyone else
    def get_fieldsets(self, request, obj=None):
        editable = self.has_change_permission(request, obj) if obj else self.has_add_permission(request)
        if editable:
            credentials = ("new_agent_token", "new_webhook_secret")
            callbacks = ("callback_url", "new_callback_secret")
        else:
            credentials = ("agent_token_masked", "webhook_secret_masked")
            callbacks = ("callback_url", "callback_secret_masked")
        return [
            ("LiveChat organization", {"fields": ("tenant", "name", "client_id", "organization_id", "group_id", "enabled")}),
            ("Credentials", {
                "fields": credentials,
                "description": "Secrets are write-only: they are never shown again. Leave a field blank to keep the stored value."
                if editable else "Secrets are write-only: only their last characters are shown.",
            }),
            ("Bot callbacks", {"fields": callbacks}),
        ]

    def get_readonly_fields(self, request, obj=None):
        masked_fields = ("agent_token_masked", "webhook_secret_masked", "callback_secret_masked")
        return ("tenant", *masked_fields) if obj else masked_fields

    @admin.display(description="Agent token")
    def agent_token_masked(self, obj):
        return masked(obj.agent_token)

    @admin.display(description="Webhook secret")
    def webhook_secret_masked(self, obj):
        return masked(obj.webhook_secret)

    @admin.display(description="Callback signing secret")
    def callback_secret_masked(self, obj):
        return masked(obj.callback_secret)

    @admin.display(description="webhooks")
    def webhooks_status(self, obj):
        wanted = len(livechat_setup.WEBHOOKS)
        have = len([a for a, _ in livechat_setup.WEBHOOKS if (obj.registered_webhooks or {}).get(a)])
        css = "ok" if have == wanted else ("warn" if have else "muted")
        return format_html('<span class="pill pill-{}">{}/{} registered</span>', css, have, wanted)

    @admin.display(description="active API keys", ordering="n_active_keys")
    def active_keys(self, obj):
        return obj.n_active_keys

    # ---- the change page: webhook URL, registered webhooks, API keys, recent audit entries
    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        extra = {
            "integration": obj,
            "can_manage": self.can_manage(request, obj),
            "webhook_actions": [
                (action, (obj.registered_webhooks or {}).get(action)) for action, _ in livechat_setup.WEBHOOKS
            ],
            "api_keys": list(obj.api_keys.order_by("revoked_at", "-created_at")),
            "audit_entries": selectors.integration_audit_entries(integration=obj, limit=10),
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra)

    def save_model(self, request, obj, form, change):
        if change:
            fields = form.changed_model_fields()
            obj.save()
            if fields:
                audit.record(request=request, action=audit.Action.INTEGRATION_CHANGED, tenant=obj.tenant, obj=obj,
                             changed_fields=fields)
            return
        secrets = form.secret_values
        with transaction.atomic():
            integration, raw_key = integration_service.create_integration(
                tenant=obj.tenant,
                name=obj.name,
                client_id=obj.client_id,
                organization_id=obj.organization_id,
                group_id=obj.group_id,
                webhook_secret=secrets.get("webhook_secret") or livechat_setup.new_webhook_secret(),
                agent_token=secrets["agent_token"],
                callback_url=obj.callback_url,
            )
            updates = {}
            if secrets.get("callback_secret"):
                updates["callback_secret"] = secrets["callback_secret"]
            if not obj.enabled:
                updates["enabled"] = False
            if updates:
                for name, value in updates.items():
                    setattr(integration, name, value)
                integration.save(update_fields=[*updates, "updated_at"])
            obj.pk = integration.pk
            obj._state.adding = False
            obj.refresh_from_db()
            audit.record(request=request, action=audit.Action.INTEGRATION_CREATED, tenant=obj.tenant, obj=obj,
                         changed_fields=form.changed_model_fields())
            api_key = obj.api_keys.get()
            audit.record(request=request, action=audit.Action.API_KEY_CREATED, tenant=obj.tenant, obj=api_key,
                         detail=f"first key of {obj.name}")
        request._console_one_time = {
            "raw_key": raw_key,
            "callback_secret": None if secrets.get("callback_secret") else integration.callback_secret,
        }

    def response_add(self, request, obj, post_url_continue=None):
        one_time = getattr(request, "_console_one_time", None)
        if one_time is None:
            return super().response_add(request, obj, post_url_continue)
        shown = [("Bot API key", one_time["raw_key"], "The bot sends it as Authorization: Bearer <key>.")]
        if one_time["callback_secret"]:
            shown.append(("Callback signing secret", one_time["callback_secret"],
                          "The bot verifies the webhook-signature of callbacks with it (Standard Webhooks)."))
        return one_time_secrets_response(
            request, self.admin_site,
            title=f"Integration “{obj.name}” created",
            intro="Copy these now: they are shown this once and cannot be read back later. "
                  "Next, register the webhooks and test the connection from the integration's page.",
            secrets=shown,
            back_url=self.change_url(obj),
            back_label="Continue to the integration",
            extra={"webhook_url": obj.webhook_url, "opts": self.opts},
        )

    def delete_model(self, request, obj):
        audit.record(request=request, action=audit.Action.INTEGRATION_DELETED, tenant=obj.tenant, obj=obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset.select_related("tenant"):
            audit.record(request=request, action=audit.Action.INTEGRATION_DELETED, tenant=obj.tenant, obj=obj)
        super().delete_queryset(request, queryset)

    # ---- actions on one integration
    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("<path:object_id>/test-connection/", self.console_view(self.test_connection_view),
                 name="%s_%s_test_connection" % info),
            path("<path:object_id>/register-webhooks/", self.console_view(self.register_webhooks_view),
                 name="%s_%s_register_webhooks" % info),
            path("<path:object_id>/rotate-callback-secret/", self.console_view(self.rotate_callback_secret_view),
                 name="%s_%s_rotate_callback_secret" % info),
            path("<path:object_id>/new-api-key/", self.console_view(self.new_api_key_view),
                 name="%s_%s_new_api_key" % info),
        ] + super().get_urls()

    def test_connection_view(self, request, object_id):
        integration = self.object_for_action(request, object_id)
        report = livechat_setup.check_connection(integration=integration)
        audit.record(request=request, action=audit.Action.CONNECTION_TESTED, tenant=integration.tenant,
                     obj=integration, detail=("passed" if report.ok else "failed") + ": " + report.summary)
        if report.ok:
            messages.success(request, "Connection OK. " + " · ".join(f"{s.name}: {s.detail}" for s in report.steps))
        else:
            for step in report.steps:
                level = messages.SUCCESS if step.ok else messages.ERROR
                messages.add_message(request, level, f"{step.name}: {'OK, ' if step.ok else 'FAILED, '}{step.detail}")
        return HttpResponseRedirect(self.change_url(integration))

    def register_webhooks_view(self, request, object_id):
        integration = self.object_for_action(request, object_id)
        try:
            result = livechat_setup.register_webhooks(integration=integration)
        except LiveChatError as error:
            audit.record(request=request, action=audit.Action.WEBHOOKS_REGISTERED, tenant=integration.tenant,
                         obj=integration, detail=f"failed: {error.type}")
            messages.error(request, "Registering webhooks failed: " + livechat_setup.explain(error, step="webhooks"))
            return HttpResponseRedirect(self.change_url(integration))
        audit.record(
            request=request, action=audit.Action.WEBHOOKS_REGISTERED, tenant=integration.tenant, obj=integration,
            changed_fields=["registered_webhooks", *(["webhook_secret"] if result.secret_generated else [])],
            detail=f"new: {', '.join(result.created) or 'none'}; already there: {', '.join(result.existing) or 'none'}",
        )
        if result.created:
            messages.success(request, f"Registered {len(result.created)} webhook(s): {', '.join(result.created)}."
                             + (f" Already registered: {', '.join(result.existing)}." if result.existing else ""))
        else:
            messages.info(request, "All webhooks were already registered for this URL; nothing changed.")
        return HttpResponseRedirect(self.change_url(integration))

    def rotate_callback_secret_view(self, request, object_id):
        integration = self.object_for_action(request, object_id)
        secret = integration_service.new_callback_secret()
        integration.callback_secret = secret
        integration.save(update_fields=["callback_secret", "updated_at"])
        audit.record(request=request, action=audit.Action.CALLBACK_SECRET_ROTATED, tenant=integration.tenant,
                     obj=integration, changed_fields=["callback_secret"])
        return one_time_secrets_response(
            request, self.admin_site,
            title="New callback signing secret",
            intro="Callbacks are signed with this secret from now on. Give it to the bot now: it is shown once.",
            secrets=[("Callback signing secret", secret, "Standard Webhooks secret (whsec_…)")],
            back_url=self.change_url(integration), back_label="Back to the integration",
            extra={"opts": self.opts},
        )

    def new_api_key_view(self, request, object_id):
        integration = self.object_for_action(request, object_id)
        name = (request.POST.get("name") or "bot").strip()[:200] or "bot"
        api_key, raw_key = api_key_service.create_api_key(integration=integration, name=name)
        audit.record(request=request, action=audit.Action.API_KEY_CREATED, tenant=integration.tenant, obj=api_key,
                     detail=f"for {integration.name}")
        return one_time_secrets_response(
            request, self.admin_site,
            title=f"New API key “{name}”",
            intro="Copy the key now: only its hash is kept, so it cannot be shown again.",
            secrets=[("Bot API key", raw_key, "The bot sends it as Authorization: Bearer <key>.")],
            back_url=self.change_url(integration), back_label="Back to the integration",
            extra={"opts": self.opts},
        )


# ---------------------------------------------------------------------------------------------
# API keys


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin):
    tenant_path = "integration__tenant"
    form = ApiKeyForm
    changeable = False  # a key is created and revoked, never edited
    deletable = False
    change_form_template = "dashboard/admin/apikey_change_form.html"
    changelist_title = "Bot API keys"
    list_display = ("prefix", "name", "integration", "created_at", "last_used_at", "key_status")
    list_filter = (("integration", admin.RelatedOnlyFieldListFilter),)
    list_select_related = ("integration", "integration__tenant")
    search_fields = ("prefix", "name", "integration__name")
    actions = ["revoke_selected"]
    readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("integration", "name")
        return ("integration", "name", "prefix", "created_at", "last_used_at", "revoked_at")

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("name", "bot")
        return initial

    @admin.display(description="status", ordering="revoked_at")
    def key_status(self, obj):
        return status_pill("active" if obj.is_active else "revoked")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        extra = {"api_key": obj, "can_manage": self.can_manage(request, obj), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)

    def save_model(self, request, obj, form, change):
        api_key, raw_key = api_key_service.create_api_key(integration=obj.integration, name=obj.name)
        obj.pk = api_key.pk
        obj._state.adding = False
        obj.refresh_from_db()
        audit.record(request=request, action=audit.Action.API_KEY_CREATED, tenant=obj.integration.tenant, obj=obj,
                     detail=f"for {obj.integration.name}")
        request._console_one_time = raw_key

    def response_add(self, request, obj, post_url_continue=None):
        return one_time_secrets_response(
            request, self.admin_site,
            title=f"New API key “{obj.name}”",
            intro="Copy the key now: only its hash is kept, so it cannot be shown again.",
            secrets=[("Bot API key", request._console_one_time, "The bot sends it as Authorization: Bearer <key>.")],
            back_url=reverse("admin:bridge_integration_change", args=[obj.integration_id]),
            back_label="Back to the integration",
            extra={"opts": self.opts},
        )

    def _revoke(self, request, api_key) -> bool:
        if not api_key.is_active:
            return False
        api_key_service.revoke_api_key(api_key=api_key)
        audit.record(request=request, action=audit.Action.API_KEY_REVOKED, tenant=api_key.integration.tenant,
                     obj=api_key, changed_fields=["revoked_at"])
        return True

    @admin.action(description="Revoke selected API keys")
    def revoke_selected(self, request, queryset):
        revoked = skipped = 0
        for api_key in queryset.select_related("integration__tenant"):
            if self.can_manage(request, api_key) and self._revoke(request, api_key):
                revoked += 1
            else:
                skipped += 1
        messages.success(request, f"Revoked {revoked} key(s)." + (f" {skipped} left as they were." if skipped else ""))

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not scoping.manages_any_tenant(request):
            actions.pop("revoke_selected", None)
        return actions

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("<path:object_id>/revoke/", self.console_view(self.revoke_view), name="%s_%s_revoke" % info),
        ] + super().get_urls()

    def revoke_view(self, request, object_id):
        api_key = self.object_for_action(request, object_id)
        if self._revoke(request, api_key):
            messages.success(request, f"API key {api_key.prefix}… revoked: the bot using it is refused from now on.")
        else:
            messages.info(request, f"API key {api_key.prefix}… was already revoked.")
        return self.redirect_back(request, reverse("admin:bridge_integration_change", args=[api_key.integration_id]))


# ---------------------------------------------------------------------------------------------
# Sessions


@admin.register(HitlSession)
class HitlSessionAdmin(TenantScopedAdmin):
    tenant_path = "integration__tenant"
    addable = changeable = deletable = False
    change_list_template = "dashboard/admin/session_change_list.html"
    changelist_title = "Handoff sessions"
    list_display = ("conversation", "user", "integration_name", "status_display", "agent", "started",
                    "first_reply", "closed")
    list_display_links = ("conversation",)
    list_filter = (TenantFilter, IntegrationFilter, StatusFilter, AgentFilter, DateRangeFilter)
    list_select_related = ("integration", "integration__tenant", "end_user")
    search_fields = ("conversation_id", "chat_id", "thread_id", "end_user__external_id", "end_user__name",
                     "end_user__email")
    search_help_text = "Conversation id, LiveChat chat or thread id, or the user's id, name or email."
    show_full_result_count = False
    list_per_page = 50
    actions = None
    ordering = ("-created_at",)

    @admin.display(description="conversation", ordering="conversation_id")
    def conversation(self, obj):
        return obj.title or obj.conversation_id

    @admin.display(description="user", ordering="end_user__name")
    def user(self, obj):
        return obj.end_user.name or obj.end_user.external_id

    @admin.display(description="integration", ordering="integration__name")
    def integration_name(self, obj):
        return format_html('{}<div class="quiet small">{}</div>', obj.integration.name, obj.integration.tenant.name)

    @admin.display(description="started", ordering="created_at")
    def started(self, obj):
        return short_time(obj.created_at)

    @admin.display(description="closed", ordering="closed_at")
    def closed(self, obj):
        return short_time(obj.closed_at)


    @admin.display(description="status", ordering="status")
    def status_display(self, obj):
        return status_pill(obj.status)

    @admin.display(description="agent", ordering="agent_name")
    def agent(self, obj):
        return obj.agent_name or obj.agent_id or None

    @admin.display(description="first reply after")
    def first_reply(self, obj):
        if obj.first_agent_reply_at:
            return duration(obj.first_agent_reply_at - obj.created_at)
        return None

    def get_queryset(self, request):
        return selectors.session_queryset(super().get_queryset(request))

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("export.csv", self.console_view(self.export_sessions_view), name="%s_%s_export" % info),
            path("<path:object_id>/transcript.json", self.console_view(self.transcript_json_view),
                 name="%s_%s_transcript_json" % info),
            path("<path:object_id>/transcript.csv", self.console_view(self.transcript_csv_view),
                 name="%s_%s_transcript_csv" % info),
            path("<path:object_id>/stop/", self.console_view(self.stop_view), name="%s_%s_stop" % info),
        ] + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The session page: the transcript as a chat beside the audit timeline and callbacks."""
        session = self.object_for_read(request, unquote(object_id))
        detail = selectors.session_detail(session=session)
        can_manage = self.can_manage(request, session)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": session.title or f"Conversation {session.conversation_id}",
            "subtitle": None,
            "detail": detail,
            "session": session,
            "can_manage": can_manage,
            "has_view_permission": True,
            "original": session,
            "now": timezone.now(),
        }
        return TemplateResponse(request, "dashboard/admin/session_detail.html", context)

    def transcript_json_view(self, request, object_id):
        session = self.object_for_read(request, object_id)
        detail = selectors.session_detail(session=session)
        return exports.json_download(f"transcript-{session.conversation_id}-{session.pk}.json",
                                     selectors.transcript_document(detail=detail))

    def transcript_csv_view(self, request, object_id):
        session = self.object_for_read(request, object_id)
        detail = selectors.session_detail(session=session)
        return exports.csv_download(f"transcript-{session.conversation_id}-{session.pk}.csv",
                                    selectors.TRANSCRIPT_CSV_COLUMNS, selectors.transcript_csv_rows(detail=detail))

    def export_sessions_view(self, request):
        """The sessions of the list as it is filtered (tenant, integration, status, agent, dates,
        search) as CSV, streamed."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        changelist = self.get_changelist_instance(request)
        queryset = changelist.get_queryset(request).order_by("created_at", "pk")
        params = request.GET
        span = "-".join(filter(None, [params.get("created_from"), params.get("created_to")])) or "all"
        return exports.streaming_csv(f"sessions-{span}.csv", selectors.SESSION_CSV_COLUMNS,
                                     selectors.session_export_rows(queryset))

    def stop_view(self, request, object_id):
        session = self.object_for_action(request, object_id)
        url = self.change_url(session)
        if not session.is_open:
            messages.info(request, "This handoff is already over.")
            return HttpResponseRedirect(url)
        actor = _staff_actor(request)
        reason = (request.POST.get("reason") or "").strip()[:300] or f"stopped in the console by {request.user.get_username()}"
        try:
            session = session_service.stop_session(session=session, reason=reason, closed_by=actor)
        except ServiceError as error:
            messages.error(request, f"The handoff is still open: {error.message}")
            return HttpResponseRedirect(url)
        audit.record(request=request, action=audit.Action.SESSION_STOPPED, tenant=session.integration.tenant,
                     obj=session, object_type="session", detail=reason)
        messages.success(request, "Handoff stopped: the LiveChat chat is closed and the bot was told.")
        return HttpResponseRedirect(url)


# ---------------------------------------------------------------------------------------------
# Bot callbacks (deliveries)


@admin.register(Delivery)
class DeliveryAdmin(TenantScopedAdmin):
    tenant_path = "integration__tenant"
    addable = changeable = deletable = False
    change_form_template = "dashboard/admin/delivery_change_form.html"
    changelist_title = "Bot callbacks"
    list_display = ("event_id", "type", "session_link", "state_display", "attempts", "last_status", "next_try",
                    "created")
    list_filter = ("state", "type", TenantFilter, IntegrationFilter, CreatedRangeFilter)
    list_select_related = ("integration", "integration__tenant", "session")
    search_fields = ("event_id", "session__conversation_id")
    show_full_result_count = False
    actions = ["redeliver_selected"]
    fields = ("event_id", "type", "integration", "session_link", "state_display", "attempts", "last_status",
              "next_attempt_at", "delivered_at", "last_error", "last_response", "payload_pretty", "attempt_log_table")
    readonly_fields = fields

    @admin.display(description="next try", ordering="next_attempt_at")
    def next_try(self, obj):
        return short_time(obj.next_attempt_at) if obj.state == Delivery.State.PENDING else None

    @admin.display(description="created", ordering="created_at")
    def created(self, obj):
        return short_time(obj.created_at)

    @admin.display(description="session")
    def session_link(self, obj):
        if not obj.session_id:
            return None
        url = reverse("admin:bridge_hitlsession_change", args=[obj.session_id])
        return format_html('<a href="{}">{}</a>', url, obj.session.conversation_id)

    @admin.display(description="state", ordering="state")
    def state_display(self, obj):
        return status_pill(obj.state)

    @admin.display(description="payload")
    def payload_pretty(self, obj):
        return format_html('<pre class="json">{}</pre>', selectors.pretty_json(obj.payload))

    @admin.display(description="attempts")
    def attempt_log_table(self, obj):
        rows = [
            (a.number, a.created_at.strftime("%Y-%m-%d %H:%M:%S"), a.status_code or "—", f"{a.duration_ms} ms",
             (a.error or a.response_body or "")[:300])
            for a in obj.attempt_log.all()
        ]
        if not rows:
            return "no attempt yet"
        body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>", rows)
        return format_html('<table class="attempts"><thead><tr><th>#</th><th>when</th><th>status</th><th>took</th>'
                           "<th>answer or error</th></tr></thead><tbody>{}</tbody></table>", body)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        extra = {"delivery": obj, "can_manage": self.can_manage(request, obj), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not scoping.manages_any_tenant(request):
            actions.pop("redeliver_selected", None)
        return actions



    def _redeliver(self, request, delivery) -> bool:
        before = delivery.state
        delivery = callback_service.redeliver(delivery=delivery, actor=_staff_actor(request))
        queued = before in (Delivery.State.DEAD, Delivery.State.DELIVERED)
        if queued:
            audit.record(request=request, action=audit.Action.DELIVERY_REDELIVERED, tenant=delivery.integration.tenant,
                         obj=delivery, object_type="callback", object_repr=f"{delivery.type} {delivery.event_id}")
        return queued

    @admin.action(description="Redeliver selected callbacks")
    def redeliver_selected(self, request, queryset):
        done = skipped = 0
        for delivery in queryset.select_related("integration__tenant"):
            if self.can_manage(request, delivery) and self._redeliver(request, delivery):
                done += 1
            else:
                skipped += 1
        messages.success(request, f"Queued {done} callback(s) for redelivery."
                         + (f" {skipped} pending or in flight, left alone." if skipped else ""))

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("<path:object_id>/redeliver/", self.console_view(self.redeliver_view), name="%s_%s_redeliver" % info),
        ] + super().get_urls()

    def redeliver_view(self, request, object_id):
        delivery = self.object_for_action(request, object_id)
        if self._redeliver(request, delivery):
            delivery.refresh_from_db()
            if delivery.state == Delivery.State.DELIVERED:
                messages.success(request, f"Callback {delivery.type} redelivered: the bot answered {delivery.last_status}.")
            else:
                messages.success(request, f"Callback {delivery.type} queued for redelivery (now {delivery.state}).")
        else:
            messages.info(request, f"Callback {delivery.type} is {delivery.state}: it is already on its way.")
        default = (reverse("admin:bridge_hitlsession_change", args=[delivery.session_id]) if delivery.session_id
                   else self.change_url(delivery))
        return self.redirect_back(request, default)


# ---------------------------------------------------------------------------------------------
# The console's audit trail


@admin.register(ConsoleAuditEntry)
class ConsoleAuditEntryAdmin(TenantScopedAdmin):
    tenant_path = "tenant"
    addable = changeable = deletable = False
    changelist_title = "Console audit trail"
    list_display = ("when", "username", "tenant", "action", "object_repr", "fields_changed", "detail")
    list_filter = ("action", AuditTenantFilter)
    list_select_related = ("tenant",)
    search_fields = ("username", "object_repr", "detail")
    show_full_result_count = False
    actions = None

    @admin.display(description="when", ordering="created_at")
    def when(self, obj):
        return short_time(obj.created_at)

    @admin.display(description="fields changed")
    def fields_changed(self, obj):
        return ", ".join(obj.changed_fields or []) or None

