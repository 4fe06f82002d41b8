"""What the benchmark starts, on top of the fault suite's orchestration (tests/plugins/stack.py):
a database of its own, gunicorn with hitl_project/gunicorn.conf.py and the production settings
(plus the bench-only URL, bench.settings), a Celery worker, the LiveChat sandbox noting when each
send_event arrives (bench/sandbox.py) and a bot receiver verifying signatures (bench/receiver.py).

Every process runs in its own process group and is stopped by its own pid (and gets SIGTERM if
the benchmark dies); leaving the `with` block stops them, drops the database and empties the
benchmark's Redis database.
"""
from __future__ import annotations

import base64
import os
from pathlib import Path

from tests.plugins.stack import HOST, PYTHON, ROOT, Service, Stack, free_port, wait_for_port

__all__ = ["BenchStack", "PYTHON", "ROOT", "free_port"]

SANDBOX_ORG = {"organization_id": "bench-org", "client_id": "bench-client", "account_id": "bench@example.com",
               "pat": "bench-pat"}
REDIS_DB = 13  # the test suites use 15 (and 12 for a developer's runs): stay clear of them


class BenchStack(Stack):
    def __init__(self, workdir: Path):
        super().__init__(
            "bench",
            database_url="postgres://postgres@127.0.0.1:5432/postgres",
            broker_url=f"redis://{HOST}:6379/{REDIS_DB}",
            log_dir=workdir,
            env={
                "DJANGO_SETTINGS_MODULE": "bench.settings",  # production settings + the bare endpoint
                "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
                "API_RATE_LIMIT": "1000000/min",  # one API key sends 50 messages/s
                "LOG_FORMAT": "json",  # as in production
            },
        )
        self.workdir = workdir
        self.sandbox: dict = {}
        self.receiver: dict = {}

    @property
    def web_url(self) -> str:
        return f"http://{HOST}:{self.web_port}"

    def env_with(self, **extra: str) -> dict:
        return {**self.env, **extra}

    def flush_broker(self) -> None:
        import redis

        redis.Redis.from_url(self.broker_url).flushdb()

    def close(self) -> None:
        super().close()
        try:
            self.flush_broker()
        except Exception:
            pass

    def sql(self, query: str) -> list[tuple]:
        return self.database.sql(query)

    def counts(self) -> dict:
        tables = {"sessions": "bridge_hitlsession", "messages": "bridge_message", "events": "bridge_sessionevent",
                  "deliveries": "bridge_delivery", "end_users": "bridge_enduser"}
        return {name: self.sql(f"SELECT count(*) FROM {table}")[0][0] for name, table in tables.items()}

    # ---- processes
    def start_bench_sandbox(self) -> dict:
        url = f"http://{HOST}:{self.sandbox_port}"
        record = self.workdir / "sandbox-send-event.jsonl"
        argv = [PYTHON, "-m", "bench.sandbox", "--port", str(self.sandbox_port), "--record", str(record)]
        self.add(Service("sandbox", argv, env=self.env, log_path=self._log("sandbox"), url=url,
                         port=self.sandbox_port, ready=f"{url}/_sandbox/settings"))
        token = base64.b64encode(f"{SANDBOX_ORG['account_id']}:{SANDBOX_ORG['pat']}".encode()).decode()
        self.sandbox = {"url": url, "record": record, "agent_token": token, **SANDBOX_ORG}
        return self.sandbox

    def start_receiver(self, secrets_: list[str], port: int) -> dict:
        record = self.workdir / "receiver-callbacks.jsonl"
        argv = [PYTHON, "-m", "bench.receiver", "--port", str(port), "--record", str(record)]
        for secret in secrets_:
            argv += ["--secret", secret]
        self.add(Service("receiver", argv, env=self.env, log_path=self._log("receiver"), port=port,
                         ready=lambda service: wait_for_port(port, process=service)))
        self.receiver = {"url": f"http://{HOST}:{port}/callbacks", "record": record}
        return self.receiver

    def start_bench_web(self) -> Service:
        """gunicorn as production runs it: the settings in hitl_project/gunicorn.conf.py."""
        url = self.web_url
        argv = [PYTHON, "-m", "gunicorn", "-c", "hitl_project/gunicorn.conf.py", "--bind", f"{HOST}:{self.web_port}",
                "hitl_project.wsgi:application"]
        return self.add(Service("web", argv, env=self.env, log_path=self._log("web"), url=url, port=self.web_port,
                                ready=f"{url}/healthz"))

    def start_bench_worker(self, concurrency: int | None = None) -> Service:
        """The README's worker command, as production runs it (concurrency from the settings
        unless given)."""
        argv = [PYTHON, "-m", "celery", "-A", "hitl_project", "worker", "--loglevel=INFO",
                f"--hostname=bench-{os.getpid()}@%h", *([f"--concurrency={concurrency}"] if concurrency else [])]
        return self.add(Service("worker", argv, env=self.env, log_path=self._log("worker"), ready=" ready."))
