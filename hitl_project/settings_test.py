"""Test settings: the production settings module with test-friendly environment defaults.

Anything set in the real environment (DATABASE_URL, CELERY_BROKER_URL for `make test-services`)
wins over these defaults.
"""
import os

os.environ.setdefault("HITL_IGNORE_DOTENV", "1")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "test-secret-key")
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "k0o5PRwP3mtxMs2pi6bX8f1l4aR5nUZ4rVQWc1o3yWw=")
os.environ.setdefault("ALLOWED_HOSTS", "*")
os.environ.setdefault("TASK_MODE", "inline")
os.environ.setdefault("CALLBACK_ALLOW_PRIVATE_NETWORKS", "true")
os.environ.setdefault("SECURE_COOKIES", "false")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
# Django's test client logs in without a request, which django-axes refuses; the throttle's own
# tests switch it back on.
os.environ.setdefault("AXES_ENABLED", "false")

from .settings import *  # noqa: E402,F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
