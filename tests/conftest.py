import pytest

from bridge.models import Tenant
from bridge.services.integrations import create_integration

pytest_plugins = ["tests.plugins.livechat_sandbox", "tests.plugins.processes", "tests.plugins.secret_sweep"]


class IntegrationWithKey:
    """An integration plus its raw API key (as a bot would hold it)."""

    def __init__(self, integration, api_key):
        self.integration = integration
        self.api_key = api_key

    @property
    def auth(self):
        return {"HTTP_AUTHORIZATION": f"Bearer {self.api_key}"}


def make_integration(slug="acme", name="main", **overrides):
    tenant, _ = Tenant.objects.get_or_create(slug=slug, defaults={"name": slug.title()})
    fields = dict(
        client_id="client-" + slug,
        organization_id="org-" + slug,
        group_id=0,
        webhook_secret="whs-" + slug + "-s3cr3t",
        agent_token="YWNjb3VudDpwYXQ=",
        callback_url="",
    )
    fields.update(overrides)
    integration, api_key = create_integration(tenant=tenant, name=name, **fields)
    # No log line of the session may contain these (tests/plugins/secret_sweep.py).
    from tests.plugins.secret_sweep import register_agent_token, register_secret

    register_secret(integration.webhook_secret, "make_integration webhook_secret")
    register_agent_token(integration.agent_token, "make_integration agent_token")
    register_secret(integration.callback_secret, "make_integration callback_secret")
    register_secret(api_key, "make_integration API key")
    return IntegrationWithKey(integration, api_key)


@pytest.fixture
def integration(db):
    return make_integration()


@pytest.fixture
def other_integration(db):
    return make_integration(slug="globex", name="main")


def pytest_collection_modifyitems(config, items):
    """`services` tests need the real PostgreSQL and Redis of `make test-services`."""
    import os

    database_url = os.environ.get("DATABASE_URL", "")
    if os.environ.get("CELERY_BROKER_URL") and database_url.startswith(("postgres", "pgsql")):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL and Redis: run `make test-services`")
    for item in items:
        if item.get_closest_marker("services"):
            item.add_marker(skip)
