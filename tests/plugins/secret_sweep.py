"""pytest plugin: no secret in any log line of the whole test session.

A handler first in line on the root logger sees every record of every test (the console's, the
sandbox's and the LiveChat clients' alike, in any thread), *before* the console handler's
`ContextFilter` masks anything: masking is defence in depth, code must not log secrets. It reads
the formatted message, the exception and stack text and any `extra` fields (what the JSON log
would print). The root logger is opened to DEBUG for the session (SECRET_SWEEP_LEVEL=INFO narrows
it); handlers that printed everything keep the level they had.

Secrets come from:
- `register_secret(value, label)`, which fixtures call for what they create (tests/conftest.py
  `make_integration`: webhook secret, agent token, callback secret, API key);
- every Integration and EndUser saved in the session (pre_save: webhook secret, agent token and
  its personal access token, callback secret, customer token and cookies), the Django SECRET_KEY
  and the field encryption keys;
- the LiveChat sandbox: the PATs, agent tokens and OAuth tokens of its organizations, the customer
  tokens and `__lc_cid`/`__lc_cst` cookies it mints, its static webhooks' secrets;
- shapes, whoever made them: LiveChat tokens `dal:…`, callback secrets `whsec_…`, API keys
  `hitl_<12 hex>_…`.
Values shorter than 8 characters are not tracked (too likely to occur by chance).

Every record is scanned when it is logged, against everything registered so far, and again when
its test ends, against what the test registered later. At the end, any hit fails the run (exit
status 1) and is listed with the test, logger and a masked excerpt; a secret itself is never
printed, only its first three characters, length and a digest.

Not covered: processes the tests start (celery workers of `make test-services`, gunicorn), whose
logs go to files.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import re
import threading
import traceback

import pytest

MIN_LENGTH = 8
SHAPES = {
    "LiveChat token (dal:…)": re.compile(r"(?<![A-Za-z0-9])dal:[A-Za-z0-9_\-.]{12,}"),
    "callback secret (whsec_…)": re.compile(r"whsec_[A-Za-z0-9+/=]{16,}"),
    "API key (hitl_<12 hex>_…)": re.compile(r"hitl_[0-9a-f]{12}_[A-Za-z0-9_\-]{16,}"),
}
# LogRecord attributes that are not `extra` fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "session_id"}
_OUTSIDE = "(outside any test)"


def mask(value: str) -> str:
    digest = hashlib.sha256(value.encode()).hexdigest()[:10]
    return f"{value[:3]}…({len(value)} chars, sha256 {digest})"


class _Registry:
    """Registered secrets, indexed by their first MIN_LENGTH characters so that one pass over a
    text finds any of thousands of them."""

    def __init__(self):
        self.lock = threading.Lock()
        self.labels: dict[str, str] = {}
        self.by_prefix: dict[str, list[str]] = {}
        self.added_since_mark: list[str] = []

    def add(self, value, label: str) -> None:
        if not isinstance(value, str):
            return
        value = value.strip()
        if len(value) < MIN_LENGTH:
            return
        with self.lock:
            if value in self.labels:
                return
            self.labels[value] = label
            self.by_prefix.setdefault(value[:MIN_LENGTH], []).append(value)
            self.added_since_mark.append(value)

    def mark(self) -> list[str]:
        """What was added since the last mark (and starts a new mark)."""
        with self.lock:
            added, self.added_since_mark = self.added_since_mark, []
            return added

    def find(self, text: str) -> set[str]:
        by_prefix, found = self.by_prefix, set()
        if not by_prefix:
            return found
        for start in range(len(text) - MIN_LENGTH + 1):
            candidates = by_prefix.get(text[start:start + MIN_LENGTH])
            if candidates:
                found.update(s for s in candidates if text.startswith(s, start))
        return found


_registry = _Registry()


def register_secret(value, label: str = "registered") -> None:
    """Track `value` (a str; shorter than 8 characters is ignored): a log line containing it fails the run."""
    _registry.add(value, label)


def register_agent_token(value, label: str) -> None:
    """An agent token is Base64 of `account_id:PAT`: the token and the PAT are secrets, the account id is not."""
    register_secret(value, label)
    try:
        decoded = base64.b64decode(value or "", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return
    register_secret(decoded.partition(":")[2], label + " (PAT)")


class _Leak:
    def __init__(self, registry, test, logger, level, kind, secret, text, masked_in_production):
        self.test, self.logger, self.level, self.kind = test, logger, level, kind
        self.secret_masked = mask(secret)
        # Mask everything first, then cut: a cut must not leave part of another secret readable.
        masked = _hide_all(registry, text.replace(secret, "«" + self.secret_masked + "»"))
        at = max(0, masked.find("«" + self.secret_masked))
        self.excerpt = " ".join(masked[max(0, at - 60):at + len(self.secret_masked) + 62].split())
        self.masked_in_production = masked_in_production

    def __str__(self):
        production = "masked by ContextFilter" if self.masked_in_production else "NOT masked by ContextFilter"
        return (f"{self.test}: {self.kind} {self.secret_masked} logged by {self.logger!r} at {self.level} "
                f"({production}): …{self.excerpt}…")


def _hide_all(registry: _Registry, text: str) -> str:
    """Masks every known secret and shape in `text` (for the excerpts we print)."""
    for secret in sorted(registry.find(text), key=len, reverse=True):
        text = text.replace(secret, mask(secret))
    for pattern in SHAPES.values():
        text = pattern.sub(lambda m: mask(m.group(0)), text)
    return text


class SweepHandler(logging.Handler):
    def __init__(self, registry: _Registry):
        super().__init__(level=logging.NOTSET)
        self.registry = registry
        self.current_test = _OUTSIDE
        self.test_records: list[tuple[str, str, str]] = []  # this test's (logger, level, text)
        self.leaks: dict[tuple, _Leak] = {}
        self.records = 0
        self.tests = 0

    def record_text(self, record: logging.LogRecord) -> str:
        try:
            parts = [record.getMessage()]
        except Exception:  # a broken format string: still look at what was passed
            parts = [str(record.msg), repr(record.args)]
        if record.exc_info and record.exc_info[0] is not None:
            parts.append("".join(traceback.format_exception(*record.exc_info)))
        elif record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(record.stack_info)
        for name, value in vars(record).items():
            if name not in _STANDARD:
                parts.append(f"{name}={value}")
        return "\n".join(parts)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.record_text(record)
        except Exception:
            return
        self.records += 1
        self.scan(self.current_test, record.name, record.levelname, text, self.registry.find(text), shapes=True)
        if self.current_test != _OUTSIDE:
            self.test_records.append((record.name, record.levelname, text))

    def scan(self, test, logger, level, text, secrets, *, shapes: bool) -> None:
        for secret in secrets:
            self._leak(test, logger, level, self.registry.labels.get(secret, "secret"), secret, text)
        if shapes:
            for kind, pattern in SHAPES.items():
                for match in pattern.finditer(text):
                    self._leak(test, logger, level, kind, match.group(0), text)

    def _leak(self, test, logger, level, kind, secret, text):
        key = (test, secret)
        if key not in self.leaks:
            from bridge.logging import mask_secrets

            self.leaks[key] = _Leak(self.registry, test, logger, level, kind, secret, text,
                                    secret not in mask_secrets(text))

    def start_test(self, nodeid: str) -> None:
        with self.lock:  # records may come from other threads at any time
            self.registry.mark()
            self.current_test = nodeid
            self.test_records = []
            self.tests += 1

    def end_test(self) -> None:
        """Scans this test's records again for what the test registered after they were logged."""
        with self.lock:
            late = self.registry.mark()
            if late:
                for logger, level, text in self.test_records:
                    hits = {secret for secret in late if secret in text}
                    if hits:
                        self.scan(self.current_test, logger, level, text, hits, shapes=False)
            self.test_records = []
            self.current_test = _OUTSIDE


_handler = SweepHandler(_registry)
_restore: list = []


def _install() -> None:
    """Puts the handler first on the root logger (again, if something reconfigured logging)."""
    root = logging.getLogger()
    if root.handlers[:1] != [_handler]:
        if _handler in root.handlers:
            root.removeHandler(_handler)
        root.handlers.insert(0, _handler)
    wanted = logging.getLevelName(os.environ.get("SECRET_SWEEP_LEVEL", "DEBUG").upper())
    if isinstance(wanted, int) and root.level > wanted:
        # Handlers that printed whatever root let through keep printing what they printed before.
        for handler in root.handlers:
            if handler is not _handler and handler.level == logging.NOTSET and not _is_pytest_handler(handler):
                handler.setLevel(root.level)
        root.setLevel(wanted)


def _is_pytest_handler(handler) -> bool:
    return type(handler).__module__.startswith("_pytest")


def _wrap(cls, name, after):
    original = getattr(cls, name)

    def wrapper(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        try:
            after(args, kwargs, result)
        except Exception:
            pass
        return result

    wrapper.__wrapped__ = original
    setattr(cls, name, wrapper)
    _restore.append((cls, name, original))


def _watch_sandbox() -> None:
    try:
        from bridge.livechat.sandbox.state import SandboxState
    except ImportError:
        return

    def organization(args, kwargs, agent_token):
        register_secret(kwargs.get("pat", args[3] if len(args) > 3 else None), "sandbox PAT")
        register_secret(agent_token, "sandbox agent token")
        for token in kwargs.get("oauth_tokens") or ():
            register_secret(token, "sandbox agent OAuth token")

    def oauth_token(args, kwargs, result):
        register_secret(kwargs.get("token", args[1] if len(args) > 1 else None), "sandbox agent OAuth token")

    def issued(args, kwargs, result):
        answer, cookies = result
        register_secret(answer.get("access_token"), "customer token (sandbox)")
        for name, value in cookies.items():
            register_secret(value, f"customer cookie {name} (sandbox)")

    def static_webhook(args, kwargs, result):
        register_secret(kwargs.get("secret_key", args[1] if len(args) > 1 else None), "sandbox static webhook secret")

    _wrap(SandboxState, "add_organization", organization)
    _wrap(SandboxState, "add_oauth_token", oauth_token)
    _wrap(SandboxState, "issue_token", issued)
    _wrap(SandboxState, "add_static_webhook", static_webhook)


def _watch_models() -> None:
    from django.conf import settings
    from django.db.models.signals import pre_save

    from bridge.models import EndUser, Integration

    register_secret(settings.SECRET_KEY, "Django SECRET_KEY")
    for key in settings.FIELD_ENCRYPTION_KEYS:
        register_secret(key, "field encryption key")

    def integration_saved(sender, instance, **kwargs):
        register_secret(instance.webhook_secret, "integration webhook_secret")
        register_agent_token(instance.agent_token, "integration agent_token")
        register_secret(instance.callback_secret, "integration callback_secret")
        if (instance.callback_secret or "").startswith("whsec_"):
            register_secret(instance.callback_secret[len("whsec_"):], "integration callback_secret key")

    def end_user_saved(sender, instance, **kwargs):
        register_secret(instance.customer_token, "end user customer_token")
        try:
            cookies = json.loads(instance.customer_cookies or "{}")
        except ValueError:
            cookies = {}
        for name, value in (cookies.items() if isinstance(cookies, dict) else ()):
            register_secret(value, f"end user cookie {name}")

    pre_save.connect(integration_saved, sender=Integration, dispatch_uid="secret_sweep_integration", weak=False)
    pre_save.connect(end_user_saved, sender=EndUser, dispatch_uid="secret_sweep_end_user", weak=False)


def pytest_sessionstart(session):
    _install()
    _watch_sandbox()
    try:
        _watch_models()
    except Exception as exc:  # no Django (e.g. `-p no:django`): registered secrets and shapes still count
        logging.getLogger(__name__).debug("secret sweep without model signals: %s", type(exc).__name__)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _install()
    _handler.start_test(item.nodeid)
    try:
        yield
    finally:
        _handler.end_test()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    for cls, name, original in _restore:
        setattr(cls, name, original)
    _restore.clear()
    if _handler.leaks and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    leaks = list(_handler.leaks.values())
    line = (f"secret sweep: {_handler.records} log records from {_handler.tests} tests, "
            f"{len(_registry.labels)} secrets tracked, {len(leaks)} leaks")
    if not leaks:
        terminalreporter.write_line(line)
        return
    terminalreporter.write_sep("=", "secrets in logs", red=True, bold=True)
    for leak in leaks[:50]:
        terminalreporter.write_line(str(leak))
    if len(leaks) > 50:
        terminalreporter.write_line(f"… and {len(leaks) - 50} more")
    terminalreporter.write_line(line + ": the run fails", red=True, bold=True)
