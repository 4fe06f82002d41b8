"""Real worker and scheduler processes for `make test-services` (PostgreSQL + Redis)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


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


class CeleryProcess:
    def __init__(self, kind, env, args=()):
        self.kind = kind
        self.log_path = ROOT / "tests" / "artifacts" / f"celery-{kind}-{os.getpid()}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "hitl_project", kind, "--loglevel=INFO", *args],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_for(self, text, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_path.read_text():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery {self.kind} exited:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        raise TimeoutError(f"celery {self.kind} never said {text!r}:\n{self.log_path.read_text()[-3000:]}")

    def kill(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


@pytest.fixture
def start_celery():
    """start_celery("worker"|"beat", **env) -> a running process, stopped after the test."""
    started = []

    def start(kind, args=(), **extra_env):
        process = CeleryProcess(kind, _service_env(extra_env), args)
        started.append(process)
        process.wait_for("ready." if kind == "worker" else "beat: Starting")
        return process

    yield start
    for process in started:
        process.kill()
