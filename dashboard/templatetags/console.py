"""Template helpers of the console: status pills, durations, safe links, the timeline's words."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from django import template
from django.utils.html import format_html

from dashboard import selectors

register = template.Library()

_PILL_STYLE = {
    "pending": "muted", "waiting": "warn", "assigned": "ok", "closed": "muted", "failed": "bad",
    "delivering": "warn", "delivered": "ok", "dead": "bad", "active": "ok", "revoked": "muted",
    "sent": "ok", "sending": "warn", "received": "muted",
}


@register.simple_tag
def status_pill(value: str):
    return format_html('<span class="pill pill-{}">{}</span>', _PILL_STYLE.get(value, "muted"), value)


@register.filter
def duration(value: timedelta | None) -> str:
    """`42 s`, `3 min 5 s`, `2 h 10 min`, `3 d 4 h`."""
    if value is None:
        return "—"
    seconds = int(value.total_seconds())
    if seconds < 0:
        return "—"
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@register.filter
def since(later, earlier):
    """`later - earlier` as a duration (both datetimes, either may be None)."""
    if not later or not earlier:
        return "—"
    return duration(later - earlier)


@register.filter
def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


@register.filter
def safe_url(url: str | None) -> str:
    """The URL when it is http(s); empty otherwise (no javascript: or data: links from chats)."""
    if not url:
        return ""
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return ""
    return url if scheme in ("http", "https") else ""


@register.filter
def is_image(message) -> bool:
    if message.kind == "image":
        return True
    payload = message.payload if isinstance(message.payload, dict) else {}
    content_type = str(payload.get("content_type") or "")
    if content_type.startswith("image/"):
        return True
    path = urlsplit(message.url or "").path.lower()
    return message.kind == "file" and path.endswith((".png", ".jpg", ".jpeg", ".gif", ".webp"))


@register.filter
def file_name(message) -> str:
    payload = message.payload if isinstance(message.payload, dict) else {}
    if payload.get("name"):
        return str(payload["name"])
    path = urlsplit(message.url or "").path
    return path.rsplit("/", 1)[-1] or "file"


@register.filter
def file_ext(message) -> str:
    name = file_name(message)
    ext = name.rsplit(".", 1)[-1] if "." in name else ""
    return ext[:4].upper() or "FILE"


@register.filter
def thumbnail(message) -> str:
    payload = message.payload if isinstance(message.payload, dict) else {}
    return safe_url(payload.get("thumbnail_url") or payload.get("thumbnail2x_url") or message.url)


# Glyphs every system font has (no emoji font on servers and many desktops).
_EVENT_STYLE = {
    "started": ("▶", "Handoff started"),
    "incoming_chat": ("✉", "Chat arrived in LiveChat"),
    "assigned": ("✓", "Assigned"),
    "transferred": ("⇄", "Transferred"),
    "access_updated": ("⇆", "Access changed"),
    "closed": ("■", "Closed"),
    "failed": ("✕", "Failed"),
    "error": ("!", "Error"),
    "note": ("✎", "Note"),
    "system_message": ("i", "LiveChat"),
    "manual": ("★", "Staff action"),
}


@register.filter
def event_icon(kind: str) -> str:
    return _EVENT_STYLE.get(kind, ("•", kind))[0]


@register.filter
def event_title(kind: str) -> str:
    return _EVENT_STYLE.get(kind, ("•", kind.replace("_", " ").capitalize()))[1]


@register.filter
def event_css(kind: str) -> str:
    if kind in ("failed", "error"):
        return "bad"
    if kind in ("transferred", "access_updated"):
        return "warn"
    if kind in ("assigned", "started"):
        return "ok"
    return "muted"


def _flatten(value, prefix=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}{key} " if prefix else f"{key} ")
    elif isinstance(value, list):
        if all(not isinstance(v, (dict, list)) for v in value):
            yield prefix.strip(), ", ".join(str(v) for v in value)
        else:
            for index, item in enumerate(value):
                yield from _flatten(item, f"{prefix}{index + 1} ")
    elif value not in (None, "", {}, []):
        yield prefix.strip().replace("_", " "), value


@register.filter
def data_pairs(data) -> list[tuple[str, str]]:
    """An event's data as short `label: value` pairs (credential-like keys redacted)."""
    if not isinstance(data, dict):
        return []
    return [(label.replace("_", " "), value) for label, value in _flatten(selectors.redact(data))][:12]


@register.filter
def pretty_json(value) -> str:
    return selectors.pretty_json(value)


@register.filter
def truncate_middle(value: str, length: int = 400) -> str:
    value = str(value or "")
    return value if len(value) <= length else value[: length - 1] + "…"
