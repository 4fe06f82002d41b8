"""The console as real processes on 127.0.0.1, for the fault suite and the benchmarks.

No Django and no pytest in here: the test process keeps its own settings (pytest-django's test
database) while every process started here runs the production settings module
(`hitl_project.settings`, DEBUG off) against a database of its own.

    from tests.plugins.stack import CallbackReceiver, Stack

    with Stack("faults", env={"LIVECHAT_RETRY_SCHEDULE": "1,1,2"}) as stack:
        stack.create_database()              # CREATE DATABASE hitl_faults_<pid>; manage.py migrate
        sandbox = stack.start_sandbox()      # python -m bridge.livechat.sandbox; sandbox.url
        web = stack.start_web(workers=3)     # gunicorn; returns once /healthz answers 200
        stack.start_worker(concurrency=4)    # celery worker; returns once it is "ready"
        stack.start_beat()                   # celery beat (the scheduler)
        receiver = CallbackReceiver().start()  # a bot's callback endpoint, in this process
        integration = stack.create_integration(callback_url=receiver.url)  # manage.py create_integration --json
        stack.register_webhooks(integration["integration_id"])  # as the console's button does
        ...
        stack.services["worker"].kill()      # SIGKILL to its process group (a crash)
        stack.services["worker"].start()     # the same command again; waits until ready
        stack.services["web"].restart()      # SIGTERM, wait, start again
        stack.database.sql("select count(*) from bridge_message")
    # leaving the block stops every process (SIGTERM, then SIGKILL) and drops the database

API
- `Stack(name, *, database_url=None, broker_url=None, env=None, log_dir=None)`: `database_url` is
  a PostgreSQL URL whose server hosts the new database (default `$DATABASE_URL`, else
  postgres://postgres@127.0.0.1:5432/postgres); `broker_url` defaults to `$CELERY_BROKER_URL`
  (Redis). `env` overrides the console environment (`stack.env`, built by `console_env`) for
  every process started afterwards. `stack.services` maps names to `Service`s;
  `stack.close()` (or the `with` block) ends them all and drops the database. The web and sandbox
  ports are picked free when the stack is made (`stack.web_port`, `stack.sandbox_port`), so the
  environment can name both before either runs. The sandbox serves the demo organization
  `SANDBOX_ORG`. Logs go to `log_dir` (default tests/artifacts/stack-<name>-<pid>/).
- `Service`: one command in its own process group. `start()` (waits until ready: a URL, a log
  line or an open port), `stop(sig=SIGTERM, timeout=15)`, `kill()` (SIGKILL), `restart()`,
  `alive`, `pid`, `url`, `log_path`, `log_tail()`. Processes also get SIGTERM if the process that
  started them dies (Linux PR_SET_PDEATHSIG; it follows the *thread* that started them, so start
  and restart services from a thread that lives as long as the stack, e.g. the main thread).
- `Database(server_url, name)`: `create()`, `drop()`, `url`, `sql(query, params)` → rows.
- `CallbackReceiver(port=0)`: a bot's callback endpoint in a thread. `start()`/`stop()` on the same
  port (stopped = connection refused), `fail(status, count=None, seconds=None)` for scripted
  errors, `delay` seconds per answer, `hits()` → every request with its answer and time.
- `free_port()`, `wait_for_port(port)`, `wait_for_http(url)`: bounded waits, TimeoutError on expiry;
  `console_env(...)` the environment of a production-like console process; `celery_argv(kind)`.
"""
from __future__ import annotations

import base64
import ctypes
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

import requests

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
HOST = "127.0.0.1"
# Only these variables of the caller's environment reach the console processes: the rest of the
# console's configuration is set here, so a test runner's own settings (TASK_MODE=inline, …)
# never leak into a "production" process.
INHERITED = ("PATH", "HOME", "USER", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "VIRTUAL_ENV")
# The demo organization `python -m bridge.livechat.sandbox` creates (bridge/livechat/sandbox/cli.py).
SANDBOX_ORG = {
    "organization_id": "demo-org",
    "client_id": "demo-client",
    "agent_token": base64.b64encode(b"demo@example.com:demo-pat").decode(),
    "agent_ids": ["smith@example.com", "jane@example.com"],
}


# ---- waiting -------------------------------------------------------------------------------


def free_port(host: str = HOST) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, host: str = HOST, timeout: float = 30.0, process: "Service | None" = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None:
            process.check_alive()
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f} s")


def wait_for_http(url: str, timeout: float = 30.0, process: "Service | None" = None,
                  statuses: tuple[int, ...] = (200,)) -> requests.Response:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if process is not None:
            process.check_alive()
        try:
            response = requests.get(url, timeout=2)
            if response.status_code in statuses:
                return response
            last = f"HTTP {response.status_code}: {response.text[:200]}"
        except requests.RequestException as exc:
            last = type(exc).__name__
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer {statuses} within {timeout:.0f} s (last: {last})")


# ---- processes -----------------------------------------------------------------------------


try:  # looked up here: between fork and exec the child should only call it
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _prctl = None


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if _prctl is not None:
        _prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Service:
    """One command in its own process group, logging (appending) to `log_path`.

    `ready` decides when `start()` returns: a URL (GET answers 200), a text the log prints after
    this start, a callable(service), or None (`port` accepts connections, or without a port the
    process merely runs)."""

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str], log_path: Path,
                 ready: str | Callable[["Service"], None] | None = None, url: str = "", port: int | None = None,
                 ready_timeout: float = 60.0):
        self.name, self.argv, self.env, self.log_path = name, argv, env, log_path
        self.ready, self.url, self.port, self.ready_timeout = ready, url, port, ready_timeout
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self._log_offset = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> "Service":
        if self.alive:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            log.write(f"---- {time.strftime('%H:%M:%S')} start #{self.starts + 1}: {' '.join(self.argv)}\n".encode())
            self._log_offset = log.tell()
            self.proc = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=_die_with_parent,
            )
        self.starts += 1
        try:
            self._wait_ready()
        except BaseException:
            self.stop(signal.SIGKILL)
            raise
        return self

    def _wait_ready(self) -> None:
        ready = self.ready
        if ready is None:
            if self.port:
                wait_for_port(self.port, timeout=self.ready_timeout, process=self)
            self.check_alive()
        elif callable(ready):
            ready(self)
        elif ready.startswith("http"):
            wait_for_http(ready, timeout=self.ready_timeout, process=self)
        else:
            self.wait_for_log(ready, timeout=self.ready_timeout)

    def wait_for_log(self, text: str, timeout: float = 30.0) -> None:
        """Waits until the log printed `text` since the last start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_since_start():
                return
            self.check_alive()
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} never printed {text!r} in {timeout:.0f} s:\n{self.log_tail()}")

    def check_alive(self) -> None:
        if not self.alive:
            code = self.proc.returncode if self.proc else None
            raise RuntimeError(f"{self.name} is not running (exit {code}):\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        """Sends `sig` to the whole process group and waits; SIGKILL after `timeout`. Returns the
        exit code (None if it was never started)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self._signal_group(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait(timeout=10)
        # Children that outlived their leader (a pool process mid-task) go too.
        self._signal_group(signal.SIGKILL)
        return self.proc.returncode

    def kill(self) -> int | None:
        """A crash: SIGKILL to every process of the group at once, nothing cleaned up."""
        return self.stop(signal.SIGKILL)

    def restart(self, sig: int = signal.SIGTERM) -> "Service":
        self.stop(sig)
        return self.start()

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)  # start_new_session: the group id is the leader's pid
        except (ProcessLookupError, PermissionError):
            pass

    def log_since_start(self) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_offset)
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_bytes()[-chars:].decode(errors="replace")
        except FileNotFoundError:
            return ""

    def __repr__(self) -> str:
        return f"<Service {self.name} pid={self.pid} alive={self.alive}>"


def celery_argv(kind: str, *args: str) -> list[str]:
    """The command of a Celery `worker` or `beat` of the console."""
    return [PYTHON, "-m", "celery", "-A", "hitl_project", kind, "--loglevel=INFO", *args]


# ---- the database --------------------------------------------------------------------------


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


class Database:
    """A PostgreSQL database of its own on the server of `server_url`."""

    def __init__(self, server_url: str, name: str):
        if not server_url.startswith(("postgres://", "postgresql://", "pgsql://")):
            raise ValueError("the stack needs a PostgreSQL server URL")
        self.name = name
        self.url = _with_database(server_url, name)
        self._admin_url = _with_database(server_url, "postgres").replace("pgsql://", "postgresql://", 1)

    def _connect(self, url: str):
        import psycopg

        return psycopg.connect(url.replace("pgsql://", "postgresql://", 1), autocommit=True, connect_timeout=5)

    def create(self) -> "Database":
        self.drop()
        with self._connect(self._admin_url) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        return self

    def drop(self) -> None:
        with self._connect(self._admin_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def sql(self, query: str, params: tuple | dict = ()) -> list[tuple]:
        with self._connect(self.url) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []


# ---- the stack -----------------------------------------------------------------------------


def console_env(*, database_url: str, broker_url: str, livechat_url: str = "", public_url: str = "",
                **overrides: str) -> dict[str, str]:
    """The environment of a production-like console process (hitl_project.settings, DEBUG off)."""
    env = {name: os.environ[name] for name in INHERITED if name in os.environ}
    env.update(
        DJANGO_SETTINGS_MODULE="hitl_project.settings",
        HITL_IGNORE_DOTENV="1",
        PYTHONUNBUFFERED="1",
        DEBUG="false",
        SECRET_KEY="stack-" + secrets.token_hex(16),
        FIELD_ENCRYPTION_KEYS=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        # Plain HTTP on loopback: no TLS proxy in front of it, and the bot receiver is local.
        SECURE_SSL_REDIRECT="false",
        SECURE_COOKIES="false",
        CALLBACK_ALLOW_PRIVATE_NETWORKS="true",
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=broker_url,
        TASK_MODE="celery",
        LOG_FORMAT="plain",
        LOG_LEVEL="INFO",
    )
    if livechat_url:
        env.update(LIVECHAT_API_URL=livechat_url, LIVECHAT_ACCOUNTS_URL=livechat_url)
    if public_url:
        env["PUBLIC_BASE_URL"] = public_url
    env.update({k: str(v) for k, v in overrides.items()})
    return env


class Stack:
    def __init__(self, name: str = "stack", *, database_url: str | None = None, broker_url: str | None = None,
                 env: dict[str, str] | None = None, log_dir: Path | str | None = None):
        self.name = name
        self.server_url = database_url or os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
        self.broker_url = broker_url or os.environ.get("CELERY_BROKER_URL") or "redis://127.0.0.1:6379/15"
        self.log_dir = Path(log_dir) if log_dir else ROOT / "tests" / "artifacts" / f"stack-{name}-{os.getpid()}"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.database: Database | None = None
        self.services: dict[str, Service] = {}
        self.web_port = free_port()
        self.sandbox_port = free_port()
        self.env = console_env(
            database_url=_with_database(self.server_url, f"hitl_{name}_{os.getpid()}"),
            broker_url=self.broker_url,
            livechat_url=f"http://{HOST}:{self.sandbox_port}",
            public_url=f"http://{HOST}:{self.web_port}",
            **(env or {}),
        )

    # -- lifecycle
    def __enter__(self) -> "Stack":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stops every service (newest first) and drops the database; never raises."""
        for service in reversed(list(self.services.values())):
            try:
                service.stop()
            except Exception as exc:  # keep stopping the others
                print(f"stack: could not stop {service.name}: {exc}", file=sys.stderr)
        if self.database is not None:
            try:
                self.database.drop()
            except Exception as exc:
                print(f"stack: could not drop {self.database.name}: {exc}", file=sys.stderr)

    # -- database and management commands
    def create_database(self, *, migrate: bool = True) -> Database:
        name = urlsplit(self.env["DATABASE_URL"]).path.lstrip("/")
        self.database = Database(self.server_url, name).create()
        if migrate:
            self.manage("migrate", "--noinput", "-v", "0")
        return self.database

    def manage(self, *args: str, timeout: float = 180.0) -> str:
        """Runs `manage.py <args>` with the stack's environment; returns stdout, raises on failure."""
        result = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True,
                                text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
        return result.stdout

    def create_integration(self, *, callback_url: str = "", tenant: str = "acme", name: str = "main",
                           webhook_secret: str | None = None, org: dict | None = None, group_id: int = 0) -> dict:
        """`manage.py create_integration --json` for the sandbox's demo organization; the answer
        plus `webhook_secret`: {integration_id, webhook_url, api_key, callback_secret, webhook_secret}."""
        org = org or SANDBOX_ORG
        webhook_secret = webhook_secret or "whs-" + secrets.token_hex(12)
        out = self.manage(
            "create_integration", "--tenant", tenant, "--name", name, "--client-id", org["client_id"],
            "--organization-id", org["organization_id"], "--group-id", str(group_id),
            "--webhook-secret", webhook_secret, "--agent-token", org["agent_token"],
            "--callback-url", callback_url, "--json",
        )
        return {**json.loads(out.strip().splitlines()[-1]), "webhook_secret": webhook_secret}

    def register_webhooks(self, integration_id: str) -> None:
        """Registers the integration's webhooks with LiveChat (the sandbox) as the console's
        "Register webhooks" button does (bridge.services.livechat_setup.register_webhooks)."""
        self.manage("shell", "-c", (
            "from bridge.models import Integration; "
            "from bridge.services.livechat_setup import register_webhooks; "
            f"register_webhooks(integration=Integration.objects.get(pk={str(integration_id)!r}))"
        ))

    # -- processes
    def add(self, service: Service) -> Service:
        """Tracks a service (stopped by close()) and starts it."""
        if service.name in self.services and self.services[service.name].alive:
            raise RuntimeError(f"a service named {service.name} is already running")
        self.services[service.name] = service
        return service.start()

    def _log(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def start_sandbox(self, *args: str, name: str = "sandbox") -> Service:
        """The LiveChat sandbox (demo organization `SANDBOX_ORG`) on the stack's sandbox port."""
        url = f"http://{HOST}:{self.sandbox_port}"
        argv = [PYTHON, "-m", "bridge.livechat.sandbox", "--host", HOST, "--port", str(self.sandbox_port), *args]
        return self.add(Service(name, argv, env=self.env, log_path=self._log(name), url=url, port=self.sandbox_port,
                                ready=f"{url}/_sandbox/settings"))

    def start_web(self, *args: str, workers: int = 2, name: str = "web") -> Service:
        """gunicorn serving hitl_project.wsgi on the stack's web port; ready when /healthz is 200."""
        url = f"http://{HOST}:{self.web_port}"
        argv = [PYTHON, "-m", "gunicorn", "hitl_project.wsgi:application", "--bind", f"{HOST}:{self.web_port}",
                "--workers", str(workers), "--timeout", "60", "--graceful-timeout", "15", "--access-logfile", "-",
                *args]
        return self.add(Service(name, argv, env=self.env, log_path=self._log(name), url=url, port=self.web_port,
                                ready=f"{url}/healthz"))

    def start_worker(self, *args: str, concurrency: int = 2, name: str = "worker") -> Service:
        """`celery worker`; several can run side by side under different names."""
        argv = celery_argv("worker", f"--concurrency={concurrency}", f"--hostname={name}-{os.getpid()}@%h",
                           "--without-gossip", "--without-mingle", *args)
        return self.add(Service(name, argv, env=self.env, log_path=self._log(name), ready=" ready."))

    def start_beat(self, *args: str, name: str = "beat") -> Service:
        """`celery beat`, the scheduler (run exactly one), its schedule file in the log directory."""
        argv = celery_argv("beat", f"--schedule={self.log_dir / (name + '-schedule')}", *args)
        return self.add(Service(name, argv, env=self.env, log_path=self._log(name), ready="beat: Starting"))


# ---- a bot's callback endpoint -------------------------------------------------------------


@dataclass
class Hit:
    """One request the receiver got: when (monotonic), headers (lower-case), body, and the status
    it answered."""

    at: float
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")


@dataclass
class _Failure:
    status: int
    count: int | None
    until: float | None


class CallbackReceiver:
    """A bot's callback URL served from a thread of this process. Stopping it closes the socket
    (callers get connection refused); starting it again binds the same port."""

    def __init__(self, port: int = 0, path: str = "/bot/callback"):
        self.port = port or free_port()
        self.url = f"http://{HOST}:{self.port}{path}"
        self.delay = 0.0
        self._hits: list[Hit] = []
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting
    def fail(self, status: int = 500, *, count: int | None = None, seconds: float | None = None) -> None:
        """Answer `status` to the next `count` requests and/or for the next `seconds`."""
        with self._lock:
            until = time.monotonic() + seconds if seconds is not None else None
            self._failures.append(_Failure(status, count, until))

    def _answer(self) -> int:
        now = time.monotonic()
        while self._failures:
            failure = self._failures[0]
            if (failure.until is not None and now >= failure.until) or failure.count == 0:
                self._failures.pop(0)
                continue
            if failure.count is not None:
                failure.count -= 1
            return failure.status
        return 200

    # -- reading
    def hits(self) -> list[Hit]:
        with self._lock:
            return list(self._hits)

    # -- serving
    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> "CallbackReceiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.0: one request per connection, so a stopped receiver has no open connection.
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    status = receiver._answer()
                    receiver._hits.append(Hit(time.monotonic(), {k.lower(): v for k, v in self.headers.items()},
                                              body, status))
                    delay = receiver.delay
                if delay:
                    time.sleep(delay)
                answer = b'{"ok":true}' if status < 300 else b'{"error":"scripted failure"}'
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass  # the console stopped waiting

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer((HOST, self.port), Handler)  # allow_reuse_address: rebinding works
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="callback-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            self._thread.join(5)
