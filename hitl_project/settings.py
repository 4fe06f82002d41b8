"""Settings come from the environment (and `.env`); see README's configuration table."""
import os
from pathlib import Path

import environ

from . import config
from .config import env

BASE_DIR = Path(__file__).resolve().parent.parent

if not os.environ.get("HITL_IGNORE_DOTENV"):
    environ.Env.read_env(BASE_DIR / ".env")

DEBUG = config.boolean("DEBUG", False)
SECRET_KEY = config.secret_key(DEBUG)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

DATABASES = {"default": config.database(f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

FIELD_ENCRYPTION_KEYS = config.encryption_keys(DEBUG)
PUBLIC_BASE_URL = config.url("PUBLIC_BASE_URL", "http://127.0.0.1:8000")
LIVECHAT_API_URL = config.url("LIVECHAT_API_URL", "https://api.livechatinc.com")
LIVECHAT_ACCOUNTS_URL = config.url("LIVECHAT_ACCOUNTS_URL", "https://accounts.livechat.com")
LIVECHAT_API_VERSION = env.str("LIVECHAT_API_VERSION", "3.6")
CALLBACK_ALLOW_PRIVATE_NETWORKS = config.boolean("CALLBACK_ALLOW_PRIVATE_NETWORKS", DEBUG)
CALLBACK_RETRY_SCHEDULE = config.seconds_list("CALLBACK_RETRY_SCHEDULE", "5,300,1800,7200,18000,36000,36000")
API_RATE_LIMIT = env.str("API_RATE_LIMIT", "600/min")
LIVECHAT_RETRY_SCHEDULE = config.seconds_list("LIVECHAT_RETRY_SCHEDULE", "1,5,30,120,600")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "axes",
    "django_prometheus",
    "bridge",
    "dashboard",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "bridge.middleware.RequestSizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

# Console logins are throttled: 5 failures for one username from one address lock it for 15 min.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_ENABLED = config.boolean("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env.int("LOGIN_LOCKOUT_MINUTES", 15) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

ROOT_URLCONF = "hitl_project.urls"
WSGI_APPLICATION = "hitl_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# Bodies over 1 MiB are refused with 413 by RequestSizeLimitMiddleware before Django reads them.
MAX_REQUEST_BODY_BYTES = 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["bridge.api.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["bridge.api.parsers.SafeJSONParser"],
    "EXCEPTION_HANDLER": "bridge.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "HITL console API",
    "DESCRIPTION": "Hand a bot conversation to a LiveChat agent and back.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
}

# With Redis, the cache (API rate limits) is shared by every web process; else it is per process.
CACHE_URL = env.str("CACHE_URL", "") or env.str("CELERY_BROKER_URL", "")
if CACHE_URL.startswith(("redis://", "rediss://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}}

# Task execution: "celery" with a broker; "thread" (embedded: in-process pool, make run);
# "inline" (run right after commit in the caller: tests).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", "") or None
TASK_MODE = env.str("TASK_MODE", "celery" if CELERY_BROKER_URL else "thread")
if TASK_MODE not in {"celery", "thread", "inline"}:
    raise config.ConfigError("TASK_MODE", "expected celery, thread or inline")
if TASK_MODE == "celery" and not CELERY_BROKER_URL:
    raise config.ConfigError("CELERY_BROKER_URL", "required when TASK_MODE is celery")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Tasks mostly wait (PostgreSQL, LiveChat, bots): twice as many worker processes as CPUs keep the
# CPUs busy and a slow call from holding up the others (`celery worker --concurrency` still wins).
CELERY_WORKER_CONCURRENCY = min(2 * (os.cpu_count() or 1), 16)
# Longer than any countdown we schedule, so Redis never re-delivers a task that is only waiting.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 12 * 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"

LOG_LEVEL = env.str("LOG_LEVEL", "INFO")
# JSON lines in production (one object per line, with session_id); readable text in DEBUG.
LOG_FORMAT = env.str("LOG_FORMAT", "plain" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "bridge.logging.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [session=%(session_id)s] %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(session_id)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

if not DEBUG:
    SESSION_COOKIE_SECURE = config.boolean("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_CONTENT_TYPE_NOSNIFF = True
    # Behind a TLS-terminating proxy. Probes of /healthz and /metrics may stay on plain HTTP.
    SECURE_SSL_REDIRECT = config.boolean("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = config.boolean("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    # Only takes effect once the domain is submitted to the browsers' preload list.
    SECURE_HSTS_PRELOAD = config.boolean("SECURE_HSTS_PRELOAD", True)
