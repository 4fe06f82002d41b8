"""`Idempotency-Key` on a POST: the first answer (status and body) is replayed for retries."""
import functools
import json

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from bridge.services import idempotency
from bridge.services.errors import InvalidInput

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="Any unique string (≤255 characters). A retry with the same key and body gets the first "
    "answer again; the same key with another body is 409 conflict. Kept for 24 h.",
)


def idempotent(handler):
    """Wraps an APIView `post` so a retry with the same Idempotency-Key replays the first answer.

    Runs after authentication and throttling (inside the handler), so keys are per API key.
    """

    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return handler(view, request, *args, **kwargs)
        key = key.strip()
        if not key or len(key) > idempotency.MAX_KEY_LENGTH or not key.isprintable():
            raise InvalidInput(f"{HEADER} must be 1 to {idempotency.MAX_KEY_LENGTH} printable characters")
        body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str).encode()
        fingerprint = idempotency.request_fingerprint(method=request.method, path=request.path, body=body)
        outcome = idempotency.begin(api_key=request.auth, key=key, fingerprint=fingerprint)
        if isinstance(outcome, idempotency.Replay):
            response = Response(outcome.body, status=outcome.status_code)
            response[REPLAYED_HEADER] = "true"
            return response
        try:
            response = handler(view, request, *args, **kwargs)
        except Exception as exc:
            try:
                response = view.handle_exception(exc)
            except BaseException:
                idempotency.finish(record=outcome, status_code=500, body=None)
                raise
        except BaseException:
            idempotency.finish(record=outcome, status_code=500, body=None)
            raise
        stored = json.loads(json.dumps(response.data, cls=JSONEncoder)) if response.data is not None else None
        idempotency.finish(record=outcome, status_code=response.status_code, body=stored)
        return response

    return wrapper
