"""The console's world, after healthchecks' alice/bob/charlie:

- alice manages tenant A (Acme),
- bob views tenant A,
- charlie manages tenant B (Globex) and must never see A,
- root is a superuser.

Each tenant has one integration with distinctive secrets and one full session (transcript,
audit timeline, a dead and a delivered callback).
"""
from dataclasses import dataclass

import pytest
from django.test import Client

from bridge.models import HitlSession, Integration, Tenant

from . import factories


@dataclass
class TenantWorld:
    tenant: Tenant
    integration: Integration
    secrets: factories.Secrets
    session: HitlSession


@dataclass
class World:
    a: TenantWorld
    b: TenantWorld
    alice: object
    bob: object
    charlie: object
    root: object

    def client(self, user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    @property
    def all_secrets(self) -> list[str]:
        return self.a.secrets.all() + self.b.secrets.all()


def _tenant_world(slug, name):
    tenant = factories.tenant(slug, name)
    integration, secrets = factories.integration(tenant)
    session = factories.full_session(integration, secrets, conversation_id=f"conv-{slug}", status="waiting")
    return TenantWorld(tenant, integration, secrets, session)


@pytest.fixture
def world(db):
    a = _tenant_world("acme", "Acme")
    b = _tenant_world("globex", "Globex")
    alice = factories.staff_user("alice")
    bob = factories.staff_user("bob")
    charlie = factories.staff_user("charlie")
    root = factories.staff_user("root", superuser=True)
    factories.member(alice, a.tenant, "manager")
    factories.member(bob, a.tenant, "viewer")
    factories.member(charlie, b.tenant, "manager")
    return World(a, b, alice, bob, charlie, root)


@pytest.fixture
def alice(world):
    return world.client(world.alice)


@pytest.fixture
def bob(world):
    return world.client(world.bob)


@pytest.fixture
def charlie(world):
    return world.client(world.charlie)


@pytest.fixture
def root(world):
    return world.client(world.root)
