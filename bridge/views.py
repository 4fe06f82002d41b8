import logging

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.defaults import page_not_found
from django.views.decorators.cache import never_cache

from bridge.api.errors import json_error

log = logging.getLogger(__name__)

_MACHINE_PREFIXES = ("/api/", "/webhooks/", "/healthz")


def _database_status():
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:
        log.warning("healthz: database down: %s", exc.__class__.__name__)
        return "down"


def _broker_status():
    if not settings.CELERY_BROKER_URL:
        return "embedded"
    from kombu import Connection

    try:
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception as exc:
        log.warning("healthz: broker down: %s", exc.__class__.__name__)
        return "down"


@never_cache
def healthz(request):
    checks = {"database": _database_status(), "broker": _broker_status()}
    healthy = "down" not in checks.values()
    return JsonResponse({"status": "ok" if healthy else "down", **checks}, status=200 if healthy else 503)


def not_found(request, exception=None):
    if request.path.startswith(_MACHINE_PREFIXES):
        return json_error("not_found", "not found", 404)
    return page_not_found(request, exception)


def server_error(request):
    return json_error("internal_error", "internal error", 500)
