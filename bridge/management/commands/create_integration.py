import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import URLValidator

from bridge.models import Integration
from bridge.services.integrations import create_integration, get_or_create_tenant


class Command(BaseCommand):
    help = "Create a LiveChat integration (and its tenant if missing); prints its webhook URL and API key."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="tenant slug (created if missing)")
        parser.add_argument("--name", required=True)
        parser.add_argument("--client-id", required=True)
        parser.add_argument("--organization-id", required=True)
        parser.add_argument("--group-id", type=int, default=0)
        parser.add_argument("--webhook-secret", required=True)
        parser.add_argument("--agent-token", required=True, help="Base64 of account_id:PAT")
        parser.add_argument("--callback-url", default="")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, **opts):
        if opts["callback_url"]:
            try:
                URLValidator(schemes=["http", "https"])(opts["callback_url"])
            except ValidationError:
                raise CommandError("--callback-url is not an http(s) URL") from None
        if opts["group_id"] < 0:
            raise CommandError("--group-id cannot be negative")
        try:
            tenant = get_or_create_tenant(slug=opts["tenant"])
        except ValueError as exc:
            raise CommandError(f"--tenant: {exc}") from None
        if Integration.objects.filter(tenant=tenant, name=opts["name"]).exists():
            raise CommandError(f"tenant {tenant.slug} already has an integration named {opts['name']!r}")
        integration, api_key = create_integration(
            tenant=tenant,
            name=opts["name"],
            client_id=opts["client_id"],
            organization_id=opts["organization_id"],
            group_id=opts["group_id"],
            webhook_secret=opts["webhook_secret"],
            agent_token=opts["agent_token"],
            callback_url=opts["callback_url"],
        )
        result = {
            "integration_id": str(integration.id),
            "webhook_url": integration.webhook_url,
            "api_key": api_key,
            "callback_secret": integration.callback_secret,
        }
        if opts["json"]:
            self.stdout.write(json.dumps(result))
        else:
            for key, value in result.items():
                self.stdout.write(f"{key}: {value}")
            self.stdout.write("The API key and callback secret are shown only now: keep them.")
