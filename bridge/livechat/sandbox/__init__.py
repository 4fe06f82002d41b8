"""The LiveChat sandbox: a local HTTP server speaking LiveChat's wire format (see server.py)."""
from .server import SandboxServer
from .models import SandboxError

__all__ = ["SandboxError", "SandboxServer"]
