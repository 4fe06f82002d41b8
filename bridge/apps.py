import os

from django.apps import AppConfig
from django.conf import settings


class BridgeConfig(AppConfig):
    name = "bridge"
    verbose_name = "Bridge"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from .services import integration_cache  # noqa: F401 (connects its signal: a saved integration is re-read)

        # `make run` asks for the in-process scheduler (embedded mode, no celery beat).
        if settings.TASK_MODE == "thread" and os.environ.get("HITL_EMBEDDED_SCHEDULER") == "1":
            from .dispatch import start_embedded_scheduler

            start_embedded_scheduler()
