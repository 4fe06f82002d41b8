"""Reads the environment into typed values, failing with one line that names the variable."""
import base64
import hashlib
import warnings

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured


class ConfigError(ImproperlyConfigured):
    def __init__(self, variable, problem):
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


env = environ.Env()

# Only for DEBUG: a fixed key so a dev database stays readable across restarts.
DEV_ENCRYPTION_KEY = base64.urlsafe_b64encode(hashlib.sha256(b"hitl-console-dev-key").digest()).decode()


def database(default):
    raw = env.str("DATABASE_URL", default)
    scheme = raw.split("://", 1)[0] if "://" in raw else ""
    if scheme not in environ.Env.DB_SCHEMES:
        known = ", ".join(sorted(s for s in environ.Env.DB_SCHEMES if "+" not in s))
        raise ConfigError("DATABASE_URL", f"expected <scheme>://…, with a scheme among {known}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            config = environ.Env.db_url_config(raw)
    except Exception as exc:  # django-environ raises several types for junk
        raise ConfigError("DATABASE_URL", f"not a database URL ({exc.__class__.__name__})") from None
    if config["ENGINE"] != "django.db.backends.sqlite3" and not config.get("NAME"):
        raise ConfigError("DATABASE_URL", "the URL names no database")
    return config


def boolean(name, default):
    try:
        return env.bool(name, default)
    except Exception:
        raise ConfigError(name, "expected true/false") from None


def seconds_list(name, default):
    raw = env.str(name, default)
    try:
        values = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(name, "expected comma-separated whole seconds, like 5,300,1800") from None
    if any(v < 0 for v in values):
        raise ConfigError(name, "seconds cannot be negative")
    return values


def encryption_keys(debug):
    raw = env.str("FIELD_ENCRYPTION_KEYS", "")
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    if not keys:
        if debug:
            return [DEV_ENCRYPTION_KEY]
        raise ConfigError(
            "FIELD_ENCRYPTION_KEYS",
            "required when DEBUG is off; make one with "
            "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`",
        )
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except Exception:
            raise ConfigError("FIELD_ENCRYPTION_KEYS", f"key #{position} is not a Fernet key") from None
    return keys


def secret_key(debug):
    value = env.str("SECRET_KEY", "")
    if value:
        return value
    if debug:
        return "dev-only-secret-key-not-for-production"
    raise ConfigError("SECRET_KEY", "required when DEBUG is off")


def url(name, default):
    value = env.str(name, default).rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise ConfigError(name, "expected an http(s) URL")
    return value
