"""The bridge's data. Models hold invariants (constraints, indexes); workflows live in services/."""
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from .crypto import EncryptedTextField


class Tenant(models.Model):
    """An agency's client. Staff see only the tenants they are members of."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    transcript_retention_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Purge transcripts older than this many days; empty keeps them."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        VIEWER = "viewer", "Viewer (read only)"
        MANAGER = "manager", "Manager (configure)"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="membership_once_per_tenant")]

    def __str__(self):
        return f"{self.user} in {self.tenant} ({self.role})"


class Integration(models.Model):
    """One LiveChat organization's configuration for a tenant."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="integrations")
    name = models.CharField(max_length=200)
    client_id = models.CharField(max_length=200)
    organization_id = models.CharField(max_length=200)
    group_id = models.PositiveIntegerField(default=0)
    webhook_secret = EncryptedTextField(blank=True)
    agent_token = EncryptedTextField(blank=True, help_text="Base64 of account_id:personal_access_token")
    callback_url = models.URLField(max_length=1000, blank=True)
    callback_secret = EncryptedTextField(blank=True, help_text="Standard Webhooks secret (whsec_…)")
    enabled = models.BooleanField(default=True)
    registered_webhooks = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant__name", "name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="integration_name_per_tenant")]

    def __str__(self):
        return f"{self.tenant} / {self.name}"

    @property
    def webhook_path(self):
        return f"/webhooks/livechat/{self.id}/"

    @property
    def webhook_url(self):
        return settings.PUBLIC_BASE_URL + self.webhook_path


class ApiKey(models.Model):
    """A bot's credential for one integration: only a hash is kept, found by its prefix."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200, default="bot")
    prefix = models.CharField(max_length=32, unique=True)
    key_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.prefix}… ({self.name})"

    @property
    def is_active(self):
        return self.revoked_at is None


class EndUser(models.Model):
    """A bot user, and the LiveChat customer that speaks for them."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="end_users")
    external_id = models.CharField(max_length=255)
    name = models.CharField(max_length=255, blank=True)
    email = models.EmailField(max_length=255, blank=True)
    picture_url = models.URLField(max_length=1000, blank=True)
    livechat_customer_id = models.CharField(max_length=64, blank=True)
    customer_token = EncryptedTextField(blank=True)
    customer_token_expires_at = models.DateTimeField(null=True, blank=True)
    customer_cookies = EncryptedTextField(blank=True, help_text="JSON of LiveChat's __lc_cid/__lc_cst cookies")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["integration", "external_id"], name="end_user_once_per_integration")
        ]
        indexes = [models.Index(fields=["customer_token_expires_at"], name="end_user_token_expiry")]

    def __str__(self):
        return self.name or self.external_id


class HitlSession(models.Model):
    """One handoff of a bot conversation to LiveChat agents."""

    class Status(models.TextChoices):
        PENDING = "pending"
        WAITING = "waiting"
        ASSIGNED = "assigned"
        CLOSED = "closed"
        FAILED = "failed"

    OPEN_STATUSES = (Status.PENDING, Status.WAITING, Status.ASSIGNED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="sessions")
    end_user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="sessions")
    conversation_id = models.CharField(max_length=255)
    title = models.CharField(max_length=500, blank=True)
    description = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    chat_id = models.CharField(max_length=64, blank=True)
    thread_id = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    agent_id = models.CharField(max_length=255, blank=True)
    agent_name = models.CharField(max_length=255, blank=True)
    agent_avatar = models.URLField(max_length=1000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    assigned_at = models.DateTimeField(null=True, blank=True)
    first_agent_reply_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.CharField(max_length=255, blank=True, help_text="agent id, 'bot', 'customer' or 'router'")
    close_reason = models.CharField(max_length=500, blank=True)
    last_error = models.TextField(blank=True)
    transcript_purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "conversation_id"],
                condition=Q(status__in=["pending", "waiting", "assigned"]),
                name="one_open_session_per_conversation",
            ),
        ]
        indexes = [
            models.Index(fields=["integration", "chat_id", "thread_id"], name="session_by_chat_thread"),
            models.Index(fields=["integration", "conversation_id"], name="session_by_conversation"),
            models.Index(fields=["integration", "-created_at"], name="session_recent_per_integ"),
            models.Index(fields=["status", "-created_at"], name="session_by_status"),
            # The console's session list (newest first, Django adds the pk) and the overview's
            # date ranges, across tenants: without it, a sort of every session per page.
            models.Index(fields=["-created_at", "-id"], name="session_recent"),
            # The agent filter: its choices (DISTINCT agent_id, agent_name) from this index alone, and
            # the sessions of one agent.
            models.Index(fields=["agent_id", "agent_name"], condition=~Q(agent_id=""), name="session_agents"),
        ]

    def __str__(self):
        return f"{self.conversation_id} ({self.status})"

    @property
    def is_open(self):
        return self.status in self.OPEN_STATUSES


class Message(models.Model):
    """The transcript. Messages to the agent double as the outbox of queued LiveChat calls."""

    class Direction(models.TextChoices):
        TO_AGENT = "to_agent"
        TO_BOT = "to_bot"

    class Author(models.TextChoices):
        USER = "user"
        BOT = "bot"
        AGENT = "agent"
        SYSTEM = "system"

    class Kind(models.TextChoices):
        TEXT = "text"
        IMAGE = "image"
        FILE = "file"
        RICH = "rich"
        FORM = "form"
        CUSTOM = "custom"
        SYSTEM = "system"

    class Delivery(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"
        RECEIVED = "received"  # came from LiveChat: nothing to send

    session = models.ForeignKey(HitlSession, on_delete=models.CASCADE, related_name="messages")
    direction = models.CharField(max_length=10, choices=Direction.choices)
    author = models.CharField(max_length=10, choices=Author.choices)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.TEXT)
    text = models.TextField(blank=True)
    url = models.URLField(max_length=2000, blank=True)
    payload = models.JSONField(default=dict, blank=True, help_text="file metadata, rich elements, …")
    internal = models.BooleanField(default=False, help_text="An agents-only note: never sent to the bot")
    agent_id = models.CharField(max_length=255, blank=True)
    livechat_event_id = models.CharField(max_length=64, null=True, blank=True)
    external_id = models.CharField(max_length=255, null=True, blank=True)
    delivery_state = models.CharField(max_length=10, choices=Delivery.choices, default=Delivery.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "livechat_event_id"],
                condition=Q(livechat_event_id__isnull=False),
                name="livechat_event_once_per_session",
            ),
            models.UniqueConstraint(
                fields=["session", "external_id"],
                condition=Q(external_id__isnull=False),
                name="bot_message_once_per_session",
            ),
        ]
        indexes = [
            models.Index(fields=["session", "id"], name="message_in_session_order"),
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(delivery_state__in=["pending", "sending"]),
                name="message_outbox_due",
            ),
        ]

    def __str__(self):
        return f"{self.author}: {self.text[:40]}"


class SessionEvent(models.Model):
    """The audit trail of a session, with the raw payload that caused each entry."""

    class Kind(models.TextChoices):
        STARTED = "started"
        INCOMING_CHAT = "incoming_chat"
        ASSIGNED = "assigned"
        TRANSFERRED = "transferred"
        ACCESS_UPDATED = "access_updated"
        CLOSED = "closed"
        FAILED = "failed"
        ERROR = "error"
        NOTE = "note"
        SYSTEM_MESSAGE = "system_message"
        MANUAL = "manual"

    session = models.ForeignKey(HitlSession, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    actor = models.CharField(max_length=255, blank=True, help_text="who caused it: agent id, 'bot', staff user…")
    summary = models.CharField(max_length=500, blank=True)
    data = models.JSONField(default=dict, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    dedupe_key = models.CharField(max_length=128, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "dedupe_key"],
                condition=Q(dedupe_key__isnull=False),
                name="session_event_once",
            )
        ]
        indexes = [
            models.Index(fields=["session", "created_at"], name="event_in_session_order"),
            models.Index(fields=["kind", "created_at"], name="event_by_kind"),
        ]

    def __str__(self):
        return f"{self.kind} {self.summary}"


class WebhookReceipt(models.Model):
    """One accepted LiveChat webhook: keyed so a redelivery is recognised and changes nothing, and
    kept until a worker has applied it (`processed_at`), so an accepted webhook is never lost.

    The endpoint only stores it and answers; a worker applies a chat's receipts in the order they
    arrived (`id`), and the periodic sweep picks up any whose task was lost.
    """

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="webhook_receipts")
    dedupe_key = models.CharField(max_length=128)
    action = models.CharField(max_length=64)
    # Receipts of one chat are applied one at a time, oldest first.
    chat_id = models.CharField(max_length=64, blank=True)
    # The envelope minus its secret_key; what the worker applies.
    envelope = models.JSONField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=20, blank=True, help_text="processed, duplicate, ignored or failed")
    failures = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["integration", "dedupe_key"], name="webhook_received_once")
        ]
        indexes = [
            models.Index(fields=["received_at"], name="webhook_receipt_age"),
            models.Index(fields=["integration", "chat_id", "id"], name="webhook_receipt_pending",
                         condition=models.Q(processed_at__isnull=True)),
        ]


class Delivery(models.Model):
    """The outbox of bot callbacks: one row per event, retried until delivered or dead-lettered."""

    class State(models.TextChoices):
        PENDING = "pending"
        DELIVERING = "delivering"
        DELIVERED = "delivered"
        DEAD = "dead"

    event_id = models.CharField(max_length=64, unique=True)
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="deliveries")
    session = models.ForeignKey(HitlSession, on_delete=models.CASCADE, related_name="deliveries", null=True)
    type = models.CharField(max_length=64)
    payload = models.JSONField()
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveIntegerField(null=True, blank=True)
    last_response = models.TextField(blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["session", "id"], name="delivery_in_session_order"),
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(state__in=["pending", "delivering"]),
                name="delivery_due",
            ),
            models.Index(fields=["state", "-created_at"], name="delivery_by_state"),
        ]

    def __str__(self):
        return f"{self.type} {self.event_id} ({self.state})"

    @property
    def dead_lettered(self):
        return self.state == self.State.DEAD


class DeliveryAttempt(models.Model):
    """One try of a callback, for the operator: status, duration, what the bot answered."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    response_body = models.TextField(blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["delivery", "number"]


class IdempotencyRecord(models.Model):
    """The first answer to a POST carrying an Idempotency-Key, replayed for retries."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="idempotency_records")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    response = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["api_key", "key"], name="idempotency_key_once")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_age")]
