"""Standard Webhooks signatures for bot callbacks (https://www.standardwebhooks.com/).

The `standardwebhooks` package signs, so our format is the one its verifiers (and its test
vectors) accept: `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>` with the key taken from
a `whsec_<base64>` secret. Bots verify with `Webhook(secret).verify(body, headers)`.
"""
from datetime import datetime
from math import floor

from django.utils import timezone
from standardwebhooks.webhooks import Webhook


def signature_headers(*, secret: str, msg_id: str, body: str, timestamp: datetime | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for `body` (exactly the text that is sent).

    A fresh timestamp per attempt: verifiers refuse messages older than ~5 minutes, so a retry
    hours later must be signed again; the id stays the same so the bot can dedupe.
    """
    if timestamp is None:
        timestamp = timezone.now()
    signature = Webhook(secret).sign(msg_id=msg_id, timestamp=timestamp, data=body)
    return {
        "webhook-id": msg_id,
        # The library signs floor(seconds); the header must carry the same number.
        "webhook-timestamp": str(floor(timestamp.timestamp())),
        "webhook-signature": signature,
    }
