"""Bad configuration stops start-up with one line that names the variable."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def manage_check(**env_overrides):
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE"}}
    env.update({"HITL_IGNORE_DOTENV": "1", "DEBUG": "false", "SECRET_KEY": "x",
                "FIELD_ENCRYPTION_KEYS": "k0o5PRwP3mtxMs2pi6bX8f1l4aR5nUZ4rVQWc1o3yWw="})
    env.pop("DATABASE_URL", None)
    env.pop("CELERY_BROKER_URL", None)
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "variable, value",
    [
        ("DATABASE_URL", "not a url at all"),
        ("DATABASE_URL", "nosuchdb://x/y"),
        ("FIELD_ENCRYPTION_KEYS", "not-a-fernet-key"),
        ("CALLBACK_RETRY_SCHEDULE", "5,soon"),
        ("LIVECHAT_API_URL", "api.livechatinc.com"),
    ],
)
def test_bad_value_is_one_clear_line_naming_the_variable(variable, value):
    result = manage_check(**{variable: value})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert value not in lines[0] or variable == "LIVECHAT_API_URL"  # never echo a secret-ish value


def test_missing_keys_outside_debug_are_refused():
    result = manage_check(FIELD_ENCRYPTION_KEYS="")
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS" in result.stderr


def test_good_configuration_passes():
    result = manage_check()
    assert result.returncode == 0, result.stderr
