"""Named, time-limited locks in the database (campaigns.models.Lease): a lease keeps a
rate-limited campaign to one driver, and the sandbox's callback pump to one at a time.

A holder that dies simply lets its lease expire; nothing has to clean up after it."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.utils import timezone

from campaigns.models import Lease


def lease_acquire(name: str, seconds: float) -> str | None:
    """Take a named lock for `seconds` if it is free or expired; returns a holder token."""
    holder = uuid.uuid4().hex
    now = timezone.now()
    Lease.objects.get_or_create(name=name, defaults={"until": now - timedelta(seconds=1)})
    got = Lease.objects.filter(name=name, until__lt=now).update(
        holder=holder, until=now + timedelta(seconds=seconds)
    )
    return holder if got else None


def lease_renew(name: str, holder: str, seconds: float) -> bool:
    """Extend a lease still held by `holder`; False when it was lost (expired and taken)."""
    return bool(
        Lease.objects.filter(name=name, holder=holder).update(
            until=timezone.now() + timedelta(seconds=seconds)
        )
    )


def lease_release(name: str, holder: str) -> None:
    Lease.objects.filter(name=name, holder=holder).update(
        until=timezone.now() - timedelta(seconds=1)
    )
