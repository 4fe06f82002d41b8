"""The console's own data: an audit trail of what staff changed through the console."""
from django.conf import settings
from django.db import models

from bridge.models import Tenant


class ConsoleAuditEntry(models.Model):
    """Who changed what, when, through the console. Names the fields; never holds a secret's value."""

    class Action(models.TextChoices):
        INTEGRATION_CREATED = "integration.created", "Integration created"
        INTEGRATION_CHANGED = "integration.changed", "Integration changed"
        INTEGRATION_DELETED = "integration.deleted", "Integration deleted"
        CALLBACK_SECRET_ROTATED = "integration.callback_secret_rotated", "Callback secret rotated"
        WEBHOOKS_REGISTERED = "integration.webhooks_registered", "Webhooks registered"
        CONNECTION_TESTED = "integration.connection_tested", "Connection tested"
        API_KEY_CREATED = "api_key.created", "API key created"
        API_KEY_REVOKED = "api_key.revoked", "API key revoked"
        TENANT_CHANGED = "tenant.changed", "Tenant settings changed"
        SESSION_STOPPED = "session.stopped", "Handoff stopped"
        DELIVERY_REDELIVERED = "delivery.redelivered", "Callback redelivered"

    tenant = models.ForeignKey(Tenant, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    username = models.CharField(max_length=150, blank=True, help_text="kept when the user is deleted")
    action = models.CharField(max_length=64, choices=Action.choices)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    changed_fields = models.JSONField(default=list, blank=True, help_text="field names only, never values")
    detail = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "console audit entry"
        verbose_name_plural = "console audit trail"
        indexes = [models.Index(fields=["tenant", "-created_at"], name="console_audit_by_tenant")]

    def __str__(self):
        return f"{self.username or 'someone'}: {self.get_action_display()} {self.object_repr}"
