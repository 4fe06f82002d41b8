"""Every API error is `{"error": {"type", "message", "details"?}}`."""
import logging
import math

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

from bridge.services.errors import ServiceError

log = logging.getLogger(__name__)


def error_body(type_, message, details=None):
    error = {"type": type_, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


def json_error(type_, message, status_code, details=None, headers=None):
    response = JsonResponse(error_body(type_, message, details), status=status_code)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _flatten(detail, path=""):
    """DRF's nested validation errors as {"field.sub": "first message"}."""
    if isinstance(detail, dict):
        out = {}
        for key, value in detail.items():
            out.update(_flatten(value, f"{path}.{key}" if path else str(key)))
        return out
    if isinstance(detail, list):
        if detail and all(not isinstance(item, (dict, list)) for item in detail):
            return {path or "non_field_errors": " ".join(str(item) for item in detail)}
        out = {}
        for index, item in enumerate(detail):
            out.update(_flatten(item, f"{path}.{index}" if path else str(index)))
        return out
    return {path or "non_field_errors": str(detail)}


def exception_handler(exc, context):
    if isinstance(exc, ServiceError):
        return Response(error_body(exc.type, exc.message, exc.details), status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        message = "; ".join(f"{field}: {text}" for field, text in fields.items())
        return Response(error_body("validation_error", message, {"fields": fields}), status=400)
    if isinstance(exc, exceptions.ParseError):
        return Response(error_body("validation_error", f"malformed request body: {exc.detail}"), status=400)
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return Response(error_body("validation_error", "send the body as application/json"), status=415)
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        return Response(
            error_body("authentication_error", str(exc.detail)),
            status=status.HTTP_401_UNAUTHORIZED,
            headers={"WWW-Authenticate": 'Bearer realm="api"'},
        )
    if isinstance(exc, exceptions.Throttled):
        if exc.wait is None:
            return Response(error_body("rate_limited", "too many requests; retry later"), status=429)
        wait = max(1, math.ceil(exc.wait))
        return Response(
            error_body("rate_limited", f"too many requests for this API key; retry in {wait} s"),
            status=429,
            headers={"Retry-After": str(wait)},
        )
    if isinstance(exc, exceptions.NotFound):
        return Response(error_body("not_found", "not found"), status=404)
    if isinstance(exc, exceptions.MethodNotAllowed):
        return Response(error_body("validation_error", str(exc.detail)), status=405)
    if isinstance(exc, exceptions.PermissionDenied):
        # Another tenant's object is "not found", never "forbidden".
        return Response(error_body("not_found", "not found"), status=404)
    if isinstance(exc, exceptions.APIException):
        code = exc.status_code
        type_ = "validation_error" if code < 500 else "internal_error"
        return Response(error_body(type_, str(exc.detail)), status=code)

    log.exception("unhandled API error")
    return Response(error_body("internal_error", "internal error"), status=500)
