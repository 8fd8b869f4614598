"""Background tasks of the privacy room (django-q2): they take ids or nothing, and call one
service."""

from __future__ import annotations

from campaigns.privacy.services import audit_purge


def privacy_audit_purge() -> int:
    """The daily schedule "loa: audit trail purge" (migration privacy 0003): audit events older
    than LOA_AUDIT_RETENTION_DAYS are deleted; returns how many (kept as the task's result)."""
    return audit_purge()
