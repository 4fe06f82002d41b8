"""Real worker and scheduler processes against pytest-django's test database (make test-services).

`start_celery("worker"|"beat", args=(), **env)` starts one and returns its `tests.plugins.stack.Service`
(stopped after the test). For a whole production-like stack with a database of its own (gunicorn,
worker, beat, sandbox), use `tests.plugins.stack.Stack` instead.
"""
import os

import pytest
from django.db import connection

from .stack import ROOT, Service, celery_argv


def _service_env(extra):
    db = connection.settings_dict
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("needs PostgreSQL (make test-services)")
    broker = os.environ.get("CELERY_BROKER_URL")
    if not broker:
        pytest.skip("needs Redis (make test-services)")
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="hitl_project.settings_test",
        # The worker must see the test database that pytest-django created.
        DATABASE_URL=f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        TASK_MODE="celery",
        CELERY_BROKER_URL=broker,
    )
    env.update(extra)
    return env


@pytest.fixture
def start_celery():
    """start_celery("worker"|"beat", args=(), **env) -> a running Service, stopped after the test."""
    started = []

    def start(kind, args=(), **extra_env):
        log_path = ROOT / "tests" / "artifacts" / f"celery-{kind}-{os.getpid()}.log"
        service = Service(f"celery-{kind}", celery_argv(kind, *args), env=_service_env(extra_env),
                          log_path=log_path, ready=" ready." if kind == "worker" else "beat: Starting")
        started.append(service)
        return service.start()

    yield start
    for service in started:
        service.stop()
