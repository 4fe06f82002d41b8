"""Reading a LiveChat webhook: JSON, the envelope, and the payload of the actions we handle.

Lenient the way WIRE.md asks: fields we do not use may be absent, null, or anything; fields we
do use must have the right type when present (a string id, a list of group numbers…), otherwise
the webhook is refused with 400 and nothing is stored. Unknown fields are always allowed, so a new
LiveChat field never breaks us. The schemas are jsonschema (draft 2020-12) documents.
"""
import json
from dataclasses import dataclass

from jsonschema import Draft202012Validator

from bridge.jsonsafe import without_nul

# LiveChat ids: chats are 10 characters, threads 8-10, events "<thread>_<n>"; our columns are 64.
_ID = {"type": "string", "minLength": 1, "maxLength": 64}
_OPT_ID = {"type": ["string", "null"], "maxLength": 64}
_OPT_STR = {"type": ["string", "null"]}
_OPT_INT = {"type": ["integer", "null"]}
_OPT_OBJ = {"type": ["object", "null"]}
_ID_LIST = {"type": ["array", "null"], "items": {"type": "string"}}
_GROUP_LIST = {"type": ["array", "null"], "items": {"type": "integer"}}
# Our URL columns are 1000-2000 characters: a longer URL is refused rather than cut (a cut URL is broken).
_OPT_URL = {"type": ["string", "null"], "maxLength": 2000}

ENVELOPE = {
    "type": "object",
    "required": ["action"],
    "properties": {
        "webhook_id": _OPT_STR,
        "secret_key": _OPT_STR,
        "action": {"type": "string", "minLength": 1, "maxLength": 64},
        "organization_id": _OPT_STR,
        "payload": _OPT_OBJ,
        "additional_data": _OPT_OBJ,
    },
}

_USER = {
    "type": "object",
    "required": ["id"],
    "properties": {
        "id": {"type": "string", "minLength": 1, "maxLength": 255},
        "name": _OPT_STR,
        "type": _OPT_STR,
        "avatar": {"type": ["string", "null"], "maxLength": 1000},
        "present": {"type": ["boolean", "null"]},
        "visibility": _OPT_STR,
    },
}

PAYLOADS = {
    "incoming_event": {
        "type": "object",
        "required": ["chat_id", "event"],
        "properties": {
            "chat_id": _ID,
            "thread_id": _OPT_ID,
            "event": {
                "type": "object",
                "required": ["id", "type"],
                "properties": {
                    "id": _ID,
                    "type": {"type": "string", "minLength": 1},
                    "created_at": _OPT_STR,
                    "visibility": _OPT_STR,
                    "author_id": {"type": ["string", "null"], "maxLength": 255},
                    "text": _OPT_STR,
                    "name": _OPT_STR,
                    "url": _OPT_URL,
                    "thumbnail_url": _OPT_URL,
                    "content_type": _OPT_STR,
                    "size": _OPT_INT,
                    "width": _OPT_INT,
                    "height": _OPT_INT,
                    "alternative_text": _OPT_STR,
                    "template_id": _OPT_STR,
                    "elements": {"type": ["array", "null"], "items": {"type": "object"}},
                    "system_message_type": _OPT_STR,
                },
            },
        },
    },
    "user_added_to_chat": {
        "type": "object",
        "required": ["chat_id", "user"],
        "properties": {
            "chat_id": _ID,
            "thread_id": _OPT_ID,
            "user": _USER,
            "user_type": _OPT_STR,
            "reason": _OPT_STR,
            "requester_id": _OPT_STR,
        },
    },
    "chat_transferred": {
        "type": "object",
        "required": ["chat_id"],
        "properties": {
            "chat_id": _ID,
            "thread_id": _OPT_ID,
            "requester_id": _OPT_STR,
            "reason": _OPT_STR,
            "transferred_to": {
                "type": ["object", "null"],
                "properties": {"group_ids": _GROUP_LIST, "agent_ids": _ID_LIST},
            },
            "transferred_from": {
                "type": ["object", "null"],
                "properties": {"group_ids": _GROUP_LIST, "agent_ids": _ID_LIST},
            },
            "queue": {
                "type": ["object", "null"],
                "properties": {"position": _OPT_INT, "wait_time": _OPT_INT, "queued_at": _OPT_STR},
            },
        },
    },
    "chat_deactivated": {
        "type": "object",
        "required": ["chat_id"],
        "properties": {"chat_id": _ID, "thread_id": _OPT_ID, "user_id": _OPT_STR},
    },
    "incoming_chat": {
        "type": "object",
        "required": ["chat"],
        "properties": {
            "chat": {
                "type": "object",
                "required": ["id"],
                "properties": {
                    "id": _ID,
                    "thread": {"type": ["object", "null"], "properties": {"id": _OPT_ID}},
                    "users": {"type": ["array", "null"], "items": {"type": "object"}},
                    "access": {"type": ["object", "null"], "properties": {"group_ids": _GROUP_LIST}},
                },
            },
            "transferred_from": _OPT_OBJ,
        },
    },
    "chat_access_updated": {
        "type": "object",
        "required": ["id"],
        "properties": {
            "id": _ID,
            "access": {"type": ["object", "null"], "properties": {"group_ids": _GROUP_LIST}},
        },
    },
}

HANDLED_ACTIONS = frozenset(PAYLOADS)

_envelope_validator = Draft202012Validator(ENVELOPE)
_payload_validators = {action: Draft202012Validator(schema) for action, schema in PAYLOADS.items()}


class InvalidWebhook(Exception):
    """The body is not a webhook we can read. `fields` maps a dotted path to what is wrong."""

    def __init__(self, message: str, fields: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


@dataclass(frozen=True)
class Envelope:
    action: str
    payload: dict
    webhook_id: str
    organization_id: str
    # The envelope as received minus `secret_key`: what the audit trail may keep.
    raw: dict


def parse_json(body: bytes) -> dict:
    """The body as a JSON object, or InvalidWebhook."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise InvalidWebhook("the body is not valid JSON") from None
    except RecursionError:
        raise InvalidWebhook("the body is nested too deeply") from None
    if not isinstance(data, dict):
        raise InvalidWebhook("the body must be a JSON object")
    return data


def parse_envelope(data: dict) -> Envelope:
    """Validates the envelope, and the payload when the action is one we handle.

    Call it after the secret check: NUL characters (which PostgreSQL cannot store) are dropped
    here, and a secret must match as it was sent, not as it would be stored.
    """
    try:
        data = without_nul(data)
    except RecursionError:
        raise InvalidWebhook("the body is nested too deeply") from None
    _validate(_envelope_validator, data, prefix="")
    action = data["action"]
    payload = data.get("payload")
    validator = _payload_validators.get(action)
    if validator is not None:
        if payload is None:
            raise InvalidWebhook(f"{action} needs a payload", {"payload": "required"})
        _validate(validator, payload, prefix="payload")
    raw = {key: value for key, value in data.items() if key != "secret_key"}
    return Envelope(
        action=action,
        payload=payload or {},
        webhook_id=data.get("webhook_id") or "",
        organization_id=data.get("organization_id") or "",
        raw=raw,
    )


def _validate(validator: Draft202012Validator, data, *, prefix: str) -> None:
    fields = {}
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        path = ".".join([prefix, *map(str, error.absolute_path)] if prefix else map(str, error.absolute_path))
        fields.setdefault(path or "body", _describe(error))
    if fields:
        message = "; ".join(f"{path}: {text}" for path, text in fields.items())
        raise InvalidWebhook(f"invalid webhook: {message}", fields)


def _describe(error) -> str:
    """A short message that never quotes the offending value (it could be anything)."""
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"expected {expected}"
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in (error.instance or {})]
        return "missing " + ", ".join(missing)
    if error.validator == "maxLength":
        return f"longer than {error.validator_value} characters"
    if error.validator == "minLength":
        return "must not be empty"
    return f"fails {error.validator}"
