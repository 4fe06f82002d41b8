"""Typed LiveChat errors: the one place that decides what a failure from LiveChat means.

Callers branch on the class, not on strings: renew the token on `LiveChatAuthError`, retry with
backoff on `LiveChatTransientError`, give up on `LiveChatPermanentError`. HTTP statuses of
LiveChat errors are not documented (WIRE.md), so the error `type` decides first and the status
only when there is no known type.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone

AUTH_TYPES = frozenset({"authentication", "authorization"})
TRANSIENT_TYPES = frozenset(
    {"too_many_requests", "service_unavailable", "internal", "request_timeout", "connection", "timeout"}
)
MAX_MESSAGE_LENGTH = 300

# Anything shaped like a credential is cut out of messages we did not write ourselves.
_SECRET_PATTERNS = [
    (re.compile(r"(?i)\b(bearer|basic)\s+\S+"), r"\1 [REDACTED]"),
    (re.compile(r"\bdal:[\w\-.~+/=]+"), "[REDACTED]"),
    (re.compile(r"\b(__lc_\w+)=[^;\s]+"), r"\1=[REDACTED]"),
]


def safe_text(text: object, limit: int = MAX_MESSAGE_LENGTH) -> str:
    """`text` as a short single line with anything token- or cookie-like redacted."""
    value = " ".join(str(text or "").split())
    for pattern, replacement in _SECRET_PATTERNS:
        value = pattern.sub(replacement, value)
    return value[:limit]


class LiveChatError(Exception):
    """A failed LiveChat call. `type` is LiveChat's error type, or "connection"/"timeout"/"http"."""

    def __init__(self, type: str, message: str = "", *, status: int | None = None):
        self.type = type or "http"
        self.status = status
        self.message = safe_text(message) or self.type
        super().__init__(self.message)

    def __reduce__(self):
        # Keep type/status/retry_after through pickling (Celery serializes task exceptions).
        return (type(self), (self.type, self.message), self.__dict__.copy())

    def __str__(self) -> str:
        status = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{self.type}: {self.message}{status}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(type={self.type!r}, status={self.status!r}, message={self.message!r})"


class LiveChatAuthError(LiveChatError):
    """Authentication/authorization refused: renew the token (once) or fix the credentials."""


class LiveChatTransientError(LiveChatError):
    """Worth retrying later: rate limits, LiveChat outages, 5xx, connection errors, timeouts."""

    def __init__(self, type: str, message: str = "", *, status: int | None = None, retry_after: float | None = None):
        super().__init__(type, message, status=status)
        self.retry_after = retry_after


class LiveChatPermanentError(LiveChatError):
    """Retrying the same request will not help (validation, not_found, chat_inactive, other 4xx)."""


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def classify(status: int | None, body: object, *, headers: Mapping[str, str] | None = None) -> LiveChatError:
    """The typed error for a non-200 LiveChat answer (`body` is the parsed JSON or None).

    Understands both `{"error":{"type","message"}}` (chat/configuration APIs) and
    `{"oauth_exception","exception_description"}` (the accounts token endpoint).
    """
    error_type, message = "", ""
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            error_type = str(error.get("type") or "")
            message = str(error.get("message") or "")
        elif isinstance(error, str):  # some OAuth servers answer {"error": "...", "error_description": ...}
            error_type, message = "authentication", str(body.get("error_description") or error)
        elif body.get("oauth_exception") or body.get("identity_exception"):
            error_type = "authentication"
            message = str(body.get("exception_description") or body.get("oauth_exception") or body.get("identity_exception"))
    retry_after = parse_retry_after((headers or {}).get("Retry-After"))

    if error_type in AUTH_TYPES:
        return LiveChatAuthError(error_type, message, status=status)
    if error_type in TRANSIENT_TYPES:
        return LiveChatTransientError(error_type, message, status=status, retry_after=retry_after)
    if error_type:
        # A known non-transient type, or one we have never seen: a 5xx still says "try later".
        if status is not None and status >= 500:
            return LiveChatTransientError(error_type, message, status=status, retry_after=retry_after)
        return LiveChatPermanentError(error_type, message, status=status)

    # No LiveChat error body (proxy page, empty answer, non-JSON): go by the status.
    message = message or (f"HTTP {status} from LiveChat" if status else "unreadable answer from LiveChat")
    if status in (401, 403):
        return LiveChatAuthError("authentication" if status == 401 else "authorization", message, status=status)
    if status == 429:
        return LiveChatTransientError("too_many_requests", message, status=status, retry_after=retry_after)
    if status == 408:
        return LiveChatTransientError("request_timeout", message, status=status, retry_after=retry_after)
    if status is None or status >= 500 or status < 400:
        # 5xx, or a 200/3xx we could not read: LiveChat (or a proxy in front) misbehaved; try later.
        return LiveChatTransientError("http", message, status=status, retry_after=retry_after)
    return LiveChatPermanentError("http", message, status=status)
