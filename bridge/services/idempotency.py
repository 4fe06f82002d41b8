"""Idempotency keys: the first answer to a POST is kept and replayed for retries of it.

A record is claimed (inserted) before the work runs, so two concurrent requests with one key do
the work once: the second is told to retry. Answers of 5xx are not kept: the work did not
happen, so a retry with the same key tries again (as the contract promises for POST /sessions).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from bridge.models import ApiKey, IdempotencyRecord

from .errors import Conflict

# How long a first answer is kept for replay.
RETENTION = timedelta(hours=24)
# A claimed key with no answer after this long belongs to a request that died: take it over.
STALE_CLAIM = timedelta(minutes=5)
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: object


def request_fingerprint(*, method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(b"\n".join([method.upper().encode(), path.encode(), body])).hexdigest()


def begin(*, api_key: ApiKey, key: str, fingerprint: str) -> Replay | IdempotencyRecord:
    """Claims `key` for this request (returns the new record) or returns the first answer to
    replay. Conflict when the key was used for another request or is still being worked on."""
    now = timezone.now()
    for _ in range(2):
        try:
            with transaction.atomic():
                return IdempotencyRecord.objects.create(api_key=api_key, key=key, request_hash=fingerprint)
        except IntegrityError:
            pass
        record = IdempotencyRecord.objects.filter(api_key=api_key, key=key).first()
        if record is None:
            continue  # released meanwhile: claim again
        expired = record.created_at < now - RETENTION
        stale = record.status_code is None and record.created_at < now - STALE_CLAIM
        if expired or stale:
            IdempotencyRecord.objects.filter(pk=record.pk, created_at=record.created_at).delete()
            continue
        if record.request_hash != fingerprint:
            raise Conflict(
                "this Idempotency-Key was already used for a different request; use a new key for new requests",
                details={"idempotency_key": key},
            )
        if record.status_code is None:
            raise Conflict(
                "a request with this Idempotency-Key is still in progress; retry in a few seconds",
                details={"idempotency_key": key, "in_progress": True},
            )
        return Replay(status_code=record.status_code, body=record.response)
    raise Conflict("this Idempotency-Key is busy; retry in a few seconds", details={"idempotency_key": key})


def finish(*, record: IdempotencyRecord, status_code: int, body: object) -> None:
    """Keeps the answer for replay, or releases the key when the request failed on our side."""
    if status_code >= 500:
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
        return
    IdempotencyRecord.objects.filter(pk=record.pk).update(status_code=status_code, response=body)


def purge_expired_records(*, older_than: timedelta = RETENTION) -> int:
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - older_than).delete()
    return deleted
