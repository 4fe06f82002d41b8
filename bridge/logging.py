"""Log context and hygiene: the session id on every line, and no secret-shaped text ever."""
import contextvars
import logging
import re
from contextlib import contextmanager

_session_id = contextvars.ContextVar("hitl_session_id", default=None)

# Defence in depth: code must not log secrets, but if one slips into a message it is masked.
_SECRET_PATTERNS = [
    re.compile(r"dal:[A-Za-z0-9_\-.]+"),  # LiveChat access tokens
    re.compile(r"whsec_[A-Za-z0-9+/=]+"),  # callback signing secrets
    re.compile(r"hitl_[0-9a-f]{12}_[A-Za-z0-9_\-]+"),  # bot API keys
    re.compile(r"(?i)(authorization:?\s*(?:basic|bearer)\s+)[A-Za-z0-9+/=._\-:]+"),
    re.compile(r"(?i)(\"?(?:secret_key|webhook_secret|agent_token|access_token|__lc_cst|__lc_cid)\"?\s*[:=]\s*\"?)[^\s\",}]+"),
]


@contextmanager
def bind_session(session_id):
    """Every log line inside carries `session_id`."""
    token = _session_id.set(str(session_id) if session_id else None)
    try:
        yield
    finally:
        _session_id.reset(token)


def current_session_id():
    return _session_id.get()


def mask_secrets(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "[redacted]", text)
    return text


class ContextFilter(logging.Filter):
    """Adds `session_id` to every record and masks secret-shaped text in the message."""

    def filter(self, record):
        record.session_id = _session_id.get()
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
