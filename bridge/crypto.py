"""Secrets at rest: Fernet tokens under FIELD_ENCRYPTION_KEYS (first key encrypts, all decrypt)."""
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


@lru_cache(maxsize=4)
def _fernet(keys: tuple) -> MultiFernet:
    return MultiFernet([Fernet(k) for k in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(plain: str) -> str:
    return fernet().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        # Never echo the stored value: it is ciphertext of a secret.
        raise ValueError("a stored secret cannot be decrypted with FIELD_ENCRYPTION_KEYS") from None


class EncryptedTextField(models.TextField):
    """Holds a secret as a Fernet token; Python code only ever sees the plain text.

    An empty string is stored as empty, so "not configured" stays visible without a key.
    """

    description = "Text encrypted at rest"

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        return decrypt(value)

    def to_python(self, value):
        return value

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if not value:
            return value
        return encrypt(value)

    def get_lookup(self, lookup_name):
        # Ciphertext is randomised: comparing it to anything but emptiness is meaningless.
        if lookup_name not in {"isnull", "exact"}:
            return None
        return super().get_lookup(lookup_name)
