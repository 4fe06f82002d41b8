"""End users as LiveChat customers: identity persistence and per-integration client construction.

An `EndUser` keeps its LiveChat customer id, the customer token and the `__lc_cid`/`__lc_cst`
cookies (all encrypted). The cookies are what let a renewed token speak for the *same*
customer, so they are read into a `CustomerIdentity` before every call and written back
whenever the client changed it (minted or renewed a token).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from bridge.livechat import CustomerClient, CustomerIdentity, LiveChatConfig, LiveChatError, http_session_for
from bridge.models import EndUser, HitlSession, Integration

log = logging.getLogger(__name__)

# How far ahead of expiry the periodic task renews the tokens of users with an open session.
RENEW_AHEAD = timedelta(minutes=30)
RENEW_BATCH = 200


def livechat_config(*, integration: Integration) -> LiveChatConfig:
    """The LiveChat configuration of one integration (URLs and API version from settings)."""
    return LiveChatConfig.from_settings(
        client_id=integration.client_id,
        organization_id=integration.organization_id,
        agent_token=integration.agent_token,
        redirect_uri=integration.webhook_url,
    )


def identity_of(*, end_user: EndUser) -> CustomerIdentity:
    try:
        cookies = json.loads(end_user.customer_cookies) if end_user.customer_cookies else {}
    except ValueError:
        log.warning("end user %s: unreadable customer cookies; a new LiveChat customer will be made", end_user.pk)
        cookies = {}
    return CustomerIdentity(
        customer_id=end_user.livechat_customer_id or None,
        access_token=end_user.customer_token or None,
        expires_at=end_user.customer_token_expires_at,
        cookies=cookies if isinstance(cookies, dict) else {},
    )


def save_identity(*, end_user: EndUser, identity: CustomerIdentity) -> None:
    """Stores what the client minted or renewed (no-op unless `identity.changed`)."""
    if not identity.changed:
        return
    fields = {
        "livechat_customer_id": identity.customer_id or "",
        "customer_token": identity.access_token or "",
        "customer_token_expires_at": identity.expires_at,
        "customer_cookies": json.dumps(identity.cookies, sort_keys=True) if identity.cookies else "",
    }
    for name, value in fields.items():
        setattr(end_user, name, value)
    end_user.save(update_fields=[*fields, "updated_at"])
    identity.changed = False


def client_for(*, end_user: EndUser, identity: CustomerIdentity) -> CustomerClient:
    integration = end_user.integration
    config = livechat_config(integration=integration)
    # One connection pool per integration; its cookie jar refuses cookies (see http_session_for).
    return CustomerClient(config, identity, session=http_session_for(f"{integration.pk}:customer"))


@contextmanager
def customer_client(*, end_user: EndUser) -> Iterator[CustomerClient]:
    """A client speaking as `end_user`; whatever token it minted or renewed is saved on exit,
    also when the call failed (a renewed token is still good)."""
    identity = identity_of(end_user=end_user)
    client = client_for(end_user=end_user, identity=identity)
    try:
        yield client
    finally:
        save_identity(end_user=end_user, identity=identity)


def renew_expiring_tokens(*, ahead: timedelta = RENEW_AHEAD, limit: int = RENEW_BATCH) -> int:
    """Renews the customer tokens that expire within `ahead`, for end users with an open session.

    Tokens are also renewed lazily before any call; this keeps open sessions' customers warm so
    an agent's reply never waits on a token. Returns how many were renewed.
    """
    due = timezone.now() + ahead
    users = (
        EndUser.objects.select_related("integration")
        .filter(Q(customer_token_expires_at__lt=due) & ~Q(livechat_customer_id=""))
        .filter(sessions__status__in=HitlSession.OPEN_STATUSES, integration__enabled=True)
        .distinct()
        .order_by("customer_token_expires_at")[:limit]
    )
    renewed = 0
    for end_user in users:
        try:
            with customer_client(end_user=end_user) as client:
                client.renew_token()
            renewed += 1
        except LiveChatError as error:
            log.warning("end user %s: customer token renewal failed: %s", end_user.pk, error)
    return renewed
