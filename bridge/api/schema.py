"""OpenAPI pieces shared by the API views: the API-key scheme, the error shape and examples."""
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "bridge.api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "The integration's API key: `Authorization: Bearer hitl_…`",
        }


ErrorBody = inline_serializer(
    "Error",
    {
        "error": inline_serializer(
            "ErrorDetail",
            {
                "type": serializers.ChoiceField(
                    choices=["validation_error", "authentication_error", "not_found", "conflict", "rate_limited",
                             "livechat_error", "internal_error"]
                ),
                "message": serializers.CharField(help_text="What went wrong and what to fix."),
                "details": serializers.DictField(required=False),
            },
        )
    },
)

_ERRORS = {
    400: ("validation_error", "conversation_id: This field is required.",
          {"fields": {"conversation_id": "This field is required."}}),
    401: ("authentication_error", "invalid or revoked API key", None),
    404: ("not_found", "no session with id 3f1c…", None),
    409: ("conflict", "conversation 'conv-42' already has an open session; stop it first or keep using it",
          {"session_id": "7d4f5a8e-3c1b-4b55-9d6e-0f5a2c1e9b10", "status": "waiting"}),
    413: ("validation_error", "request body is 2000000 bytes; the limit is 1048576", None),
    429: ("rate_limited", "too many requests for this API key; retry in 12 s", None),
    502: ("livechat_error", "LiveChat did not start the chat (service_unavailable); the session is recorded as "
          "failed, retry the request later",
          {"session_id": "7d4f5a8e-3c1b-4b55-9d6e-0f5a2c1e9b10", "livechat_error_type": "service_unavailable"}),
}


def error_responses(*codes: int) -> dict:
    """{status: OpenApiResponse} for the contract's JSON errors, each with an example."""
    responses = {}
    for code in (*codes, 401, 429):
        type_, message, details = _ERRORS[code]
        error = {"type": type_, "message": message, **({"details": details} if details else {})}
        responses[code] = OpenApiResponse(
            ErrorBody, description=type_, examples=[OpenApiExample(type_, value={"error": error})]
        )
    return responses
