"""LiveChat: the client (the only code that knows LiveChat's wire format) and its sandbox."""
from .client import (
    AgentClient,
    ConfigurationClient,
    CustomerClient,
    CustomerIdentity,
    LiveChatConfig,
    call_with_retry,
    http_session_for,
)
from .errors import (
    LiveChatAuthError,
    LiveChatError,
    LiveChatPermanentError,
    LiveChatTransientError,
    classify,
)

__all__ = [
    "AgentClient",
    "ConfigurationClient",
    "CustomerClient",
    "CustomerIdentity",
    "LiveChatAuthError",
    "LiveChatConfig",
    "LiveChatError",
    "LiveChatPermanentError",
    "LiveChatTransientError",
    "call_with_retry",
    "classify",
    "http_session_for",
]
