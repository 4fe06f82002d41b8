from django.conf import settings

from bridge.api.errors import json_error


class RequestSizeLimitMiddleware:
    """Refuses bodies over MAX_REQUEST_BODY_BYTES with 413 before anything reads them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return json_error("validation_error", "Content-Length is not a number", 400)
        if length > settings.MAX_REQUEST_BODY_BYTES:
            return json_error(
                "validation_error",
                f"request body is {length} bytes; the limit is {settings.MAX_REQUEST_BODY_BYTES}",
                413,
            )
        return self.get_response(request)
