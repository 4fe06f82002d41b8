import base64

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from bridge.livechat import LiveChatError
from bridge.models import ApiKey, Integration, Membership
from bridge.services.api_keys import create_api_key, revoke_api_key
from bridge.services.integrations import create_integration, get_or_create_tenant
from bridge.services.livechat_setup import register_webhooks

# The LiveChat sandbox's built-in demo organization (`manage.py livechat_sandbox` defaults).
DEMO_LIVECHAT = {
    "client_id": "demo-client",
    "organization_id": "demo-org",
    "group_id": 0,
    "webhook_secret": "demo-webhook-secret",
    "agent_token": base64.b64encode(b"demo@example.com:demo-pat").decode(),
}
DEMO_LOGIN = ("admin", "admin")


class Command(BaseCommand):
    help = "Seed a demo tenant, staff login and integration pointing at the LiveChat sandbox (DEBUG only)."

    def add_arguments(self, parser):
        parser.add_argument("--callback-url", default="", help="the demo bot's callback URL, if any")
        parser.add_argument(
            "--register-webhooks",
            action="store_true",
            help="register the integration's webhooks with LiveChat (the sandbox, in `make run`)",
        )

    def handle(self, *args, **opts):
        if not settings.DEBUG:
            raise CommandError("seed_demo creates a known login: it only runs with DEBUG on")
        username, password = DEMO_LOGIN
        user, _ = get_user_model().objects.get_or_create(username=username, defaults={"email": "admin@example.com"})
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()

        tenant = get_or_create_tenant(slug="demo", name="Demo agency client")
        Membership.objects.get_or_create(user=user, tenant=tenant, defaults={"role": Membership.Role.MANAGER})
        integration = Integration.objects.filter(tenant=tenant, name="Demo LiveChat").first()
        if integration is None:
            integration, raw_key = create_integration(
                tenant=tenant, name="Demo LiveChat", callback_url=opts["callback_url"], **DEMO_LIVECHAT
            )
        else:
            # Keys are shown once: each run retires the last demo key and prints a new one.
            for old in ApiKey.objects.filter(integration=integration, revoked_at__isnull=True):
                revoke_api_key(api_key=old)
            _, raw_key = create_api_key(integration=integration, name="demo")

        if opts["register_webhooks"]:
            try:
                registration = register_webhooks(integration=integration)
            except LiveChatError as error:
                raise CommandError(f"could not register the demo webhooks: {error.message}") from None
            self.stdout.write(f"Webhooks registered: {', '.join(sorted(registration.registered))}")

        self.stdout.write(
            f"Demo tenant '{tenant.slug}' ready.\n"
            f"  console:     {settings.PUBLIC_BASE_URL}/admin/  (login {username} / {password})\n"
            f"  integration: {integration.id}\n"
            f"  webhook URL: {integration.webhook_url}\n"
            f"  bot API key: {raw_key}\n"
        )
