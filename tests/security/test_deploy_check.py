import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_production_settings_pass_check_deploy_without_warnings():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SECURE_", "AXES_"))}
    env.update(
        HITL_IGNORE_DOTENV="1",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(60),
        FIELD_ENCRYPTION_KEYS="k0o5PRwP3mtxMs2pi6bX8f1l4aR5nUZ4rVQWc1o3yWw=",
        ALLOWED_HOSTS="hitl.example.com",
    )
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "TASK_MODE", "SECURE_COOKIES"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
