"""The LiveChat webhook endpoint: authenticate, validate, store, answer fast.

A plain Django view (no session, no CSRF, no DRF authentication): LiveChat authenticates with the
`secret_key` inside the body only. Order of checks: unknown or disabled integration → 404;
unreadable JSON → 400; wrong or missing secret → 401; malformed envelope → 400; then the service
stores it for a worker: 200 `{"result": "accepted"|"duplicate"|"ignored"}` (ignored: an action we
do not handle). Nothing is stored unless the answer is 200. The body, and so the secret, is never
logged.
"""
import logging

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from bridge import metrics
from bridge.api.errors import json_error
from bridge.services import webhooks as service

from .parsing import InvalidWebhook, parse_envelope, parse_json

log = logging.getLogger(__name__)


@csrf_exempt
def livechat_webhook(request, integration_id):
    if request.method != "POST":
        return json_error("validation_error", "use POST", 405, headers={"Allow": "POST"})
    integration = service.get_webhook_integration(integration_id=integration_id)
    if integration is None:
        metrics.webhook(None, "not_found")
        return json_error("not_found", "no enabled integration has this webhook URL", 404)
    try:
        data = parse_json(request.body)
    except InvalidWebhook as exc:
        log.info("livechat webhook for integration %s refused: %s", integration.pk, exc.message)
        metrics.webhook(None, "invalid")
        return json_error("validation_error", exc.message, 400)
    if not service.secret_matches(integration=integration, given=data.get("secret_key")):
        log.warning("livechat webhook for integration %s refused: wrong or missing secret_key", integration.pk)
        metrics.webhook(data.get("action"), "unauthorized")
        return json_error("authentication_error", "wrong or missing secret_key", 401)
    try:
        envelope = parse_envelope(data)
    except InvalidWebhook as exc:
        log.info("livechat webhook for integration %s refused: %s", integration.pk, exc.message)
        metrics.webhook(data.get("action"), "invalid")
        return json_error("validation_error", exc.message, 400, details={"fields": exc.fields})
    result = service.accept_webhook(
        integration=integration, action=envelope.action, payload=envelope.payload, raw=envelope.raw
    )
    metrics.webhook(envelope.action, result)
    return JsonResponse({"result": result})
