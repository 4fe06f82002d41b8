"""Fuzzing: schemathesis against the bot API's OpenAPI schema, hypothesis against the LiveChat webhook."""
