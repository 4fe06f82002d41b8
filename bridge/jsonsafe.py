"""JSON from outside, made storable everywhere: PostgreSQL's text and jsonb refuse NUL characters."""


def without_nul(value):
    """`value` with every "\\x00" removed from its strings and keys, at any depth."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {without_nul(key): without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_nul(item) for item in value]
    return value
