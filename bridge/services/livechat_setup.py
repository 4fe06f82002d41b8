"""Setting an integration up against LiveChat: test its credentials, register its webhooks.

Both are what a manager clicks in the console; both speak to LiveChat only through
`bridge.livechat` and never return or log a token or secret.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from bridge.livechat import AgentClient, ConfigurationClient, CustomerClient, CustomerIdentity, LiveChatError
from bridge.models import Integration

from .customers import livechat_config

# What the console needs to hear about, with the filters LiveChat should apply.
WEBHOOKS: tuple[tuple[str, dict | None], ...] = (
    ("incoming_event", {"author_type": "agent"}),
    ("chat_deactivated", None),
    ("chat_transferred", None),
    ("user_added_to_chat", None),
)


def new_webhook_secret() -> str:
    """A secret for LiveChat to send back in every webhook's body (`secret_key`)."""
    return secrets.token_urlsafe(32)


def explain(error: LiveChatError, *, step: str = "") -> str:
    """A LiveChat error in plain words for a person setting the integration up."""
    hints = {
        "authentication": "LiveChat refused the credentials",
        "authorization": "the credentials lack a permission this needs",
        "missing_access": "the credentials lack a permission this needs",
        "invalid_request": "LiveChat refused the request",
        "group_not_found": "no such group in this organization",
        "not_found": "LiveChat does not know it",
        "validation": "LiveChat rejected a value",
        "limit_reached": "LiveChat's limit is reached",
        "license_expired": "the LiveChat license has expired",
        "too_many_requests": "LiveChat is rate limiting; try again in a minute",
        "service_unavailable": "LiveChat is unavailable right now; try again later",
        "internal": "LiveChat had an internal error; try again later",
        "request_timeout": "LiveChat timed out; try again later",
        "timeout": "LiveChat did not answer in time",
        "connection": "could not reach LiveChat",
    }
    if step == "token" and error.type in ("authentication", "invalid_request"):
        hint = "LiveChat refused to mint a customer token: check the client id, the organization id and that the webhook URL is on the app's redirect URI list"
    elif step in ("group", "webhooks") and error.type in ("authentication", "authorization"):
        hint = "LiveChat refused the agent token: it must be Base64 of account_id:personal_access_token with the needed scopes"
    else:
        hint = hints.get(error.type, "LiveChat answered with an error")
    status = f", HTTP {error.status}" if error.status else ""
    return f"{hint} (LiveChat said: {error.message} [{error.type}{status}])"


@dataclass
class CheckStep:
    name: str
    ok: bool
    detail: str


@dataclass
class ConnectionReport:
    steps: list[CheckStep] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(step.ok for step in self.steps)

    @property
    def summary(self) -> str:
        return "; ".join(f"{step.name}: {step.detail}" for step in self.steps)


def check_connection(*, integration: Integration) -> ConnectionReport:
    """Mints a customer token (cookie grant) and checks the integration's group (PAT).

    Each step is independent, so one report names every problem. Minting a token creates a
    LiveChat customer, like any first visit of a chat widget does.
    """
    config = livechat_config(integration=integration)
    report = ConnectionReport()

    try:
        identity = CustomerIdentity()
        CustomerClient(config, identity).ensure_token()
        report.steps.append(CheckStep("Customer token", True, "minted a customer token with the cookie grant"))
    except LiveChatError as error:
        report.steps.append(CheckStep("Customer token", False, explain(error, step="token")))

    if not integration.agent_token:
        report.steps.append(CheckStep("Group", False, "no agent token is stored for this integration"))
        return report
    try:
        group = AgentClient(config).get_group(group_id=integration.group_id)
        name = group.get("name") if isinstance(group, dict) else None
        detail = f"group {integration.group_id}" + (f" “{name}”" if name else "") + " found"
        report.steps.append(CheckStep("Group", True, detail))
    except LiveChatError as error:
        report.steps.append(CheckStep("Group", False, f"group {integration.group_id}: " + explain(error, step="group")))
    return report


@dataclass
class WebhookRegistration:
    registered: dict[str, str]  # action → webhook id, all of the console's actions now in place
    created: list[str]  # actions registered by this call
    existing: list[str]  # actions that were already registered for this URL
    secret_generated: bool = False


def register_webhooks(*, integration: Integration) -> WebhookRegistration:
    """Registers the console's webhooks for this integration's URL, idempotently.

    Lists the owner's webhooks first and keeps those already registered for the same URL and
    action with our secret; a stale one (another secret) is replaced. Ids are stored in
    `integration.registered_webhooks`. Raises LiveChatError; whatever was registered before the
    failure is stored all the same.
    """
    secret_generated = False
    if not integration.webhook_secret:
        integration.webhook_secret = new_webhook_secret()
        integration.save(update_fields=["webhook_secret", "updated_at"])
        secret_generated = True

    client = ConfigurationClient(livechat_config(integration=integration))
    url = integration.webhook_url
    listed = client.list_webhooks() or []
    ours = {
        hook.get("action"): hook
        for hook in listed
        if isinstance(hook, dict) and hook.get("url") == url and hook.get("action")
    }
    registered: dict[str, str] = {}
    created: list[str] = []
    existing: list[str] = []
    try:
        for action, filters in WEBHOOKS:
            hook = ours.get(action)
            if hook is not None and hook.get("secret_key") not in (None, integration.webhook_secret):
                # LiveChat would send the old secret and be refused: replace it.
                client.unregister_webhook(webhook_id=hook["id"])
                hook = None
            if hook is not None:
                registered[action] = str(hook["id"])
                existing.append(action)
                continue
            registered[action] = str(
                client.register_webhook(
                    url=url,
                    action=action,
                    secret_key=integration.webhook_secret,
                    filters=filters,
                    description=f"HITL console: {integration.name}"[:100],
                )
            )
            created.append(action)
        # License webhooks only fire once enabled for the owner client id; enabling is idempotent.
        client.enable_license_webhooks()
    finally:
        integration.registered_webhooks = registered
        integration.save(update_fields=["registered_webhooks", "updated_at"])
    return WebhookRegistration(registered, created, existing, secret_generated)
