"""Creating and configuring integrations (LiveChat organizations of a tenant)."""
import base64
import secrets

from django.db import transaction
from django.utils.text import slugify

from bridge.models import Integration, Tenant

from .api_keys import create_api_key


def new_callback_secret() -> str:
    """A Standard Webhooks signing secret: `whsec_` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def get_or_create_tenant(*, slug: str, name: str | None = None) -> Tenant:
    slug = slugify(slug)
    if not slug:
        raise ValueError("a tenant needs a slug made of letters, digits or dashes")
    tenant, _ = Tenant.objects.get_or_create(slug=slug, defaults={"name": name or slug})
    return tenant


@transaction.atomic
def create_integration(
    *,
    tenant: Tenant,
    name: str,
    client_id: str,
    organization_id: str,
    group_id: int,
    webhook_secret: str,
    agent_token: str,
    callback_url: str = "",
) -> tuple[Integration, str]:
    """Creates the integration with a fresh callback secret and a first API key (raw key returned)."""
    integration = Integration.objects.create(
        tenant=tenant,
        name=name,
        client_id=client_id,
        organization_id=organization_id,
        group_id=group_id,
        webhook_secret=webhook_secret,
        agent_token=agent_token,
        callback_url=callback_url,
        callback_secret=new_callback_secret(),
    )
    _, raw_key = create_api_key(integration=integration, name="default")
    return integration, raw_key
