"""Writes of the privacy room: consent records and the audit trail.

Consent
- `consent_record` records one consent given or withdrawn, from any source (the admin's contact
  form, the API, an inbound message, an opt-out); `consent_grant_bulk` / `consent_withdraw_bulk`
  record the same for many contacts in set-based SQL (an import of a million rows, an opt-out file,
  an admin action over thousands of contacts).
- The history (ConsentRecord) is append-only; ConsentState, the current answer per (contact,
  channel kind, purpose), is kept in the same transaction. A consent or withdrawal for "all"
  channels also sets every per-channel state of that purpose: the newest statement wins, whatever
  channel it named.

Audit trail
- `audit_record` appends one AuditEvent; it is called by the service (or admin view) that did the
  thing, with the request when there is one (the address and the user come from it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import QuerySet
from django.utils import timezone

from campaigns.models import Contact, ContactImport
from campaigns.privacy.erasure import erased_phone_consent_again
from campaigns.privacy.middleware import current_request
from campaigns.privacy.models import (
    AuditEvent,
    ConsentPurpose,
    ConsentRecord,
    ConsentSource,
    ConsentState,
)

logger = logging.getLogger("loa.privacy")

ALL = ConsentRecord.ALL


def consent_channel_kinds() -> list[str]:
    """Every channel kind a consent may name, "all" first."""
    return [value for value, _label in ConsentRecord.CHANNEL_CHOICES]


def _actor_label(actor) -> str:
    if actor is None:
        return ""
    if isinstance(actor, str):
        return actor[:150]
    if getattr(actor, "is_authenticated", False):
        return actor.get_username()[:150]
    return ""


def _actor_user(actor):
    return actor if getattr(actor, "is_authenticated", False) and actor.pk else None


def _check(channel_kind: str, purpose: str, source: str) -> None:
    if channel_kind not in consent_channel_kinds():
        raise ValueError(f"unknown channel kind {channel_kind!r}")
    if purpose not in ConsentPurpose.values:
        raise ValueError(f"unknown consent purpose {purpose!r}")
    if source not in ConsentSource.values:
        raise ValueError(f"unknown consent source {source!r}")


def consent_record(
    *,
    contact: Contact,
    channel_kind: str,
    purpose: str = ConsentPurpose.ADVERTISING,
    granted: bool,
    source: str,
    actor=None,
    note: str = "",
    contact_import: ContactImport | None = None,
    file_name: str = "",
    at: datetime | None = None,
) -> ConsentRecord:
    """Record that `contact` gave (granted=True) or withdrew (granted=False) consent to `purpose`
    ("advertising" or "customer_care") on `channel_kind` (a ChannelKind value, or "all"), from
    `source` ("import", "form", "api", "inbound", "admin", "file", "provider").

    `actor`: the user who recorded it, or a label ("api:<key name>", "system"); `note`: free text
    shown in the history (how the consent was collected: "checkbox on the loyalty form v3"); `at`:
    when the person consented, if earlier than now (a paper form entered later). Raises ValueError
    for an unknown channel kind, purpose or source.

    Called by the admin's contact form, every opt-out path (a withdrawal), and the API.
    """
    _check(channel_kind, purpose, source)
    at = at or timezone.now()
    with transaction.atomic():
        record = ConsentRecord.objects.create(
            contact=contact,
            channel_kind=channel_kind,
            purpose=purpose,
            granted=granted,
            at=at,
            source=source,
            contact_import=contact_import,
            file_name=(file_name or (contact_import.original_name if contact_import else ""))[:255],
            note=(note or "")[:500],
            actor=_actor_user(actor),
            actor_label=_actor_label(actor),
        )
        _state_set(contact.pk, channel_kind, purpose, granted, at, source)
        if granted:
            # A number erased before and consenting again may be imported again (the erasure's
            # suppression list): the new consent is the person's own word.
            erased_phone_consent_again(phone=contact.phone)
    return record


def contact_advertising_consent_set(
    *,
    contact: Contact,
    channels: Iterable[str],
    actor=None,
    note: str = "",
    source: str = ConsentSource.ADMIN,
) -> tuple[list[str], list[str]]:
    """The admin's contact form: make the channels with a current advertising consent exactly
    `channels`, recording a consent for each one added and a withdrawal for each one removed
    (withdrawals first: unticking "all" and ticking SMS leaves SMS granted). Returns (granted,
    withdrawn) channel kinds."""
    wanted = set(channels)
    current = set(
        ConsentState.objects.filter(
            contact_id=contact.pk, purpose=ConsentPurpose.ADVERTISING, granted=True
        ).values_list("channel_kind", flat=True)
    )
    withdrawn = sorted(current - wanted)
    granted = sorted(wanted - current)
    with transaction.atomic():
        for kind in withdrawn:
            consent_record(
                contact=contact,
                channel_kind=kind,
                granted=False,
                source=source,
                actor=actor,
                note=note,
            )
        for kind in granted:
            consent_record(
                contact=contact,
                channel_kind=kind,
                granted=True,
                source=source,
                actor=actor,
                note=note,
            )
    return granted, withdrawn


def _state_set(
    contact_id: int, channel_kind: str, purpose: str, granted: bool, at: datetime, source: str
) -> None:
    # A statement older than the current one (a paper form typed in late) is history only.
    current = ConsentState.objects.filter(
        contact_id=contact_id, channel_kind=channel_kind, purpose=purpose
    ).first()
    if current is not None and current.at > at:
        return
    ConsentState.objects.update_or_create(
        contact_id=contact_id,
        channel_kind=channel_kind,
        purpose=purpose,
        defaults={"granted": granted, "at": at, "source": source},
    )
    if channel_kind == ALL:
        ConsentState.objects.filter(contact_id=contact_id, purpose=purpose, at__lte=at).exclude(
            channel_kind=ALL
        ).update(granted=granted, at=at, source=source)


def consent_grant_bulk(
    *,
    contacts: QuerySet[Contact] | Iterable[int],
    channel_kinds: Iterable[str],
    purpose: str = ConsentPurpose.ADVERTISING,
    source: str = ConsentSource.IMPORT,
    actor=None,
    note: str = "",
    contact_import: ContactImport | None = None,
    at: datetime | None = None,
) -> int:
    """Record a consent for many contacts at once, in set-based SQL: `contacts` is a Contact
    queryset (kept a subquery: an import passes "the phones of its staging table") or ids.
    Returns how many records were written."""
    return _consent_bulk(
        contacts=contacts,
        channel_kinds=channel_kinds,
        purpose=purpose,
        granted=True,
        source=source,
        actor=actor,
        note=note,
        contact_import=contact_import,
        at=at,
    )


def consent_withdraw_bulk(
    *,
    contacts: QuerySet[Contact] | Iterable[int],
    channel_kind: str,
    purposes: Iterable[str] = tuple(ConsentPurpose.values),
    source: str,
    actor=None,
    note: str = "",
    at: datetime | None = None,
) -> int:
    """Record a withdrawal for many contacts (an opt-out file, the admin's opt-out action), of
    every purpose by default: an opt-out refuses every message on that channel."""
    written = 0
    for purpose in purposes:
        written += _consent_bulk(
            contacts=contacts,
            channel_kinds=[channel_kind],
            purpose=purpose,
            granted=False,
            source=source,
            actor=actor,
            note=note,
            contact_import=None,
            at=at,
        )
    return written


def consent_withdraw_for_opt_out(
    *, contact: Contact, channel_kind: str, source: str, note: str = "", actor=None
) -> None:
    """The withdrawal an opt-out means: both purposes, on the channel kind refused."""
    for purpose in ConsentPurpose.values:
        consent_record(
            contact=contact,
            channel_kind=channel_kind,
            purpose=purpose,
            granted=False,
            source=source,
            note=note,
            actor=actor,
        )


# The OptOut.Source a withdrawal came from -> the consent source recorded.
OPT_OUT_SOURCES = {
    "admin": ConsentSource.ADMIN,
    "file": ConsentSource.FILE,
    "reply": ConsentSource.INBOUND,
    "provider": ConsentSource.PROVIDER,
    "api": ConsentSource.API,
}


def consent_source_of_opt_out(source: str) -> str:
    return OPT_OUT_SOURCES.get(source, ConsentSource.ADMIN)


_CHUNK = 5000


def _consent_bulk(
    *,
    contacts,
    channel_kinds: Iterable[str],
    purpose: str,
    granted: bool,
    source: str,
    actor,
    note: str,
    contact_import: ContactImport | None,
    at: datetime | None,
) -> int:
    kinds = list(dict.fromkeys(channel_kinds))
    for kind in kinds:
        _check(kind, purpose, source)
    if not kinds:
        return 0
    at = at or timezone.now()
    if isinstance(contacts, QuerySet):
        chunks = [_ids_of(contacts)]
    else:
        ids = list(contacts)
        chunks = [
            _ids_of(Contact.objects.filter(pk__in=ids[i : i + _CHUNK]))
            for i in range(0, len(ids), _CHUNK)
        ]
    user = _actor_user(actor)
    common = {
        "purpose": purpose,
        "granted": granted,
        "at": at,
        "source": source,
        "import_id": contact_import.pk if contact_import else None,
        "file_name": (contact_import.original_name if contact_import else "")[:255],
        "note": (note or "")[:500],
        "actor_id": user.pk if user else None,
        "actor_label": _actor_label(actor),
    }
    written = 0
    for ids_qs in chunks:
        sub_sql, sub_params = ids_qs.query.sql_with_params()
        with transaction.atomic(), connection.cursor() as cur:
            for kind in kinds:
                written += _bulk_one(cur, sub_sql, list(sub_params), kind, common)
    return written


def _ids_of(contacts: QuerySet[Contact]) -> QuerySet:
    # Named: SQLite does not name a subquery's "table"."id" column "id".
    return contacts.order_by().values(cid=models.F("pk"))


def _bulk_one(cur, sub_sql: str, sub_params: list, kind: str, c: dict) -> int:
    """One channel kind: the history rows, then the current states (upsert), in two statements
    over the same subquery of contact ids."""
    adapt = connection.ops.adapt_datetimefield_value
    at = adapt(c["at"])
    cur.execute(
        "INSERT INTO privacy_consentrecord (contact_id, channel_kind, purpose, granted, at,"
        " source, contact_import_id, file_name, note, actor_id, actor_label)"
        f" SELECT ids.cid, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s FROM ({sub_sql}) ids",
        [
            kind,
            c["purpose"],
            c["granted"],
            at,
            c["source"],
            c["import_id"],
            c["file_name"],
            c["note"],
            c["actor_id"],
            c["actor_label"],
            *sub_params,
        ],
    )
    written = cur.rowcount
    # "WHERE true": SQLite needs it to tell the upsert's ON from a join's. An older statement
    # (at later than ours) is kept.
    cur.execute(
        "INSERT INTO privacy_consentstate (contact_id, channel_kind, purpose, granted, at, source)"
        f" SELECT ids.cid, %s, %s, %s, %s, %s FROM ({sub_sql}) ids WHERE true"
        " ON CONFLICT (contact_id, channel_kind, purpose) DO UPDATE SET"
        " granted = excluded.granted, at = excluded.at, source = excluded.source"
        " WHERE privacy_consentstate.at <= excluded.at",
        [kind, c["purpose"], c["granted"], at, c["source"], *sub_params],
    )
    if kind == ALL:
        cur.execute(
            "UPDATE privacy_consentstate SET granted = %s, at = %s, source = %s"
            f" WHERE purpose = %s AND channel_kind <> %s AND at <= %s"
            f" AND contact_id IN ({sub_sql})",
            [c["granted"], at, c["source"], c["purpose"], ALL, at, *sub_params],
        )
    return written


# ---- audit trail ---------------------------------------------------------------------------------


def _client_ip(request) -> str | None:
    # ClientIpMiddleware has already put the real client's address in REMOTE_ADDR behind a
    # trusted proxy; anything else there is not an address we can store.
    addr = (request.META.get("REMOTE_ADDR") or "").strip() if request is not None else ""
    if not addr:
        return None
    try:
        models.GenericIPAddressField().to_python(addr)
    except Exception:
        return None
    return addr


def audit_record(
    *,
    action: str,
    actor=None,
    request=None,
    target: models.Model | None = None,
    target_type: str = "",
    target_id: str | int = "",
    target_label: str = "",
    rows: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the audit trail.

    `action`: an AuditAction code ("contact.view", "export.contacts", ...; a new code is allowed,
    add it to AuditAction for its label). `actor`: the user, or a label for a non-person
    ("system", "api:<key name>"); defaults to the request's user. `target`: the model instance
    acted on (its type "app.model", id and str() are kept), or give target_type/id/label for
    something that is not one row (an export of a filtered list). `rows`: how many rows an export
    held. `detail`: JSON, never secrets and never phone numbers (erasure does not rewrite it).
    """
    if request is None:
        request = current_request.get()
    if actor is None and request is not None:
        actor = getattr(request, "user", None)
    if target is not None:
        meta = target._meta
        target_type = target_type or f"{meta.app_label}.{meta.model_name}"
        target_id = target_id or target.pk
        target_label = target_label or str(target)
    return AuditEvent.objects.create(
        at=timezone.now(),
        actor=_actor_user(actor),
        actor_label=_actor_label(actor) or ("system" if request is None else ""),
        action=action[:64],
        target_type=(target_type or "")[:64],
        target_id=str(target_id if target_id is not None else "")[:64],
        target_label=(target_label or "")[:255],
        rows=rows,
        ip_address=_client_ip(request),
        detail=detail or {},
    )


def audit_retention_days() -> int:
    return int(getattr(settings, "LOA_AUDIT_RETENTION_DAYS", 400))


def audit_purge(*, now: datetime | None = None, batch: int = 10000) -> int:
    """Delete audit events older than LOA_AUDIT_RETENTION_DAYS (the daily schedule). The only
    deletion the trail knows; in batches so a first purge of years never holds a long lock."""
    days = audit_retention_days()
    if days <= 0:  # 0: keep forever
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted = 0
    while True:
        ids = list(AuditEvent.objects.filter(at__lt=cutoff).values_list("pk", flat=True)[:batch])
        if not ids:
            return deleted
        deleted += AuditEvent.objects.filter(pk__in=ids).delete()[0]
