"""Opt-outs: a phone (or many contacts, or every phone of an uploaded file) refusing one
channel kind or all of them.

Opt-outs are rows in their own table (contact, channel kind, reason, source, time): imports never
touch them, and the send engine re-checks them at send time. Every new opt-out also records a
withdrawal of consent (both purposes, the channel kind refused) in the consent history
(campaigns.privacy): one opt-out service per path, so no path can forget it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import transaction
from django.utils.translation import gettext as _

from campaigns.contacts.importing.files import (
    ImportFileError,
    RowError,
    inspect_file,
    iter_rows,
    read_preview,
)
from campaigns.contacts.importing.mapping import PHONE_HEADERS, slugify_header
from campaigns.models import Contact, OptOut
from campaigns.privacy.services import (
    consent_source_of_opt_out,
    consent_withdraw_bulk,
    consent_withdraw_for_opt_out,
)
from providers.shared.phones import DEFAULT_COUNTRY, normalize_phone, phone_candidates


class InvalidPhone(ValueError):
    """The phone given to an opt-out could not be normalized; the message says why."""


def opt_out_channel_kinds() -> list[str]:
    return [value for value, _label in OptOut.CHANNEL_CHOICES]


def contact_opt_out(
    *,
    phone: str,
    channel_kind: str = OptOut.ALL,
    reason: str = "",
    source: str = OptOut.Source.ADMIN,
    country: str = DEFAULT_COUNTRY,
    actor=None,
) -> OptOut:
    """Record that `phone` refuses `channel_kind` ("all" for every channel). `country`: where a
    phone written without +84/+855 is read (one written with it is read as written).

    A phone that is not a contact yet becomes one (with no list), so that the refusal is kept and
    honoured if the number is imported later. An existing opt-out is kept as it is (its first
    reason and time are the evidence). Raises InvalidPhone.
    """
    return phone_opt_out(
        phone=phone,
        channel_kind=channel_kind,
        reason=reason,
        source=source,
        country=country,
        actor=actor,
    )[0]


def phone_opt_out(
    *,
    phone: str,
    channel_kind: str = OptOut.ALL,
    reason: str = "",
    source: str = OptOut.Source.ADMIN,
    country: str = DEFAULT_COUNTRY,
    actor=None,
) -> tuple[OptOut, bool]:
    """contact_opt_out, also saying whether the opt-out is new (False: the phone had already
    opted out of that channel, and its first record is kept). Raises InvalidPhone."""
    if channel_kind not in opt_out_channel_kinds():
        raise ValueError(f"unknown channel kind {channel_kind!r}")
    result = normalize_phone(phone, mobile_only=False, country=country)
    if not result.ok:
        raise InvalidPhone(result.error)
    with transaction.atomic():
        contact, _contact_created = Contact.objects.get_or_create(
            phone=result.phone,
            defaults={
                "source": f"opt-out:{source}"[:255],
            },
        )
        opt_out, created = OptOut.objects.get_or_create(
            contact=contact,
            channel_kind=channel_kind,
            defaults={"reason": (reason or "")[:300], "source": source},
        )
        if created:
            consent_withdraw_for_opt_out(
                contact=contact,
                channel_kind=channel_kind,
                source=consent_source_of_opt_out(source),
                note=(reason or "")[:500],
                actor=actor,
            )
    return opt_out, created


def contacts_opt_out(
    *,
    contact_ids: Iterable[int],
    channel_kind: str = OptOut.ALL,
    reason: str = "",
    source: str = OptOut.Source.ADMIN,
    actor=None,
) -> int:
    """Opt out many contacts at once (admin action); returns how many opt-outs are new."""
    if channel_kind not in opt_out_channel_kinds():
        raise ValueError(f"unknown channel kind {channel_kind!r}")
    ids = list(contact_ids)
    created = 0
    for i in range(0, len(ids), 2000):
        chunk = ids[i : i + 2000]
        with transaction.atomic():
            have = set(
                OptOut.objects.filter(contact_id__in=chunk, channel_kind=channel_kind).values_list(
                    "contact_id", flat=True
                )
            )
            new = [
                OptOut(contact_id=c, channel_kind=channel_kind, reason=reason[:300], source=source)
                for c in chunk
                if c not in have
            ]
            OptOut.objects.bulk_create(new, ignore_conflicts=True)
            consent_withdraw_bulk(
                contacts=[o.contact_id for o in new],
                channel_kind=channel_kind,
                source=consent_source_of_opt_out(source),
                note=reason,
                actor=actor,
            )
            created += len(new)
    return created


@dataclass
class OptOutFileResult:
    total: int = 0
    opted_out: int = 0  # new opt-outs
    already: int = 0  # the phone had already opted out of that channel
    duplicates: int = 0  # the same phone earlier in the file
    invalid: int = 0
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # first 1000
    warnings: list[str] = field(default_factory=list)

    def adds_up(self) -> bool:
        return self.total == self.opted_out + self.already + self.duplicates + self.invalid


def opt_out_file_process(
    *,
    file,
    channel_kind: str = OptOut.ALL,
    reason: str = "",
    source: str = OptOut.Source.FILE,
    country: str = DEFAULT_COUNTRY,
    actor=None,
) -> OptOutFileResult:
    """Opt out every phone of an uploaded file (CSV/TSV/XLSX, any encoding): the phone column is
    found by its header ("phone", "SĐT", ...) or by its content; phones written without
    +84/+855 are read in `country`. Raises ImportFileError."""
    if channel_kind not in opt_out_channel_kinds():
        raise ImportFileError(_("Unknown channel."))
    file.seek(0)
    info = inspect_file(file)
    first, sample = read_preview(file, info)
    slugs = [slugify_header(c) for c in first]
    phone_col = next((i for i, s in enumerate(slugs) if s in PHONE_HEADERS), None)
    has_header = phone_col is not None
    if phone_col is None:
        # No known header: the first column whose cells are phones (the header row may be
        # anything, or absent).
        for i in range(max(len(r) for r in [first, *sample])):
            cells = [r[i] for r in [first, *sample] if i < len(r) and r[i].strip()]
            ok = sum(1 for c in cells if phone_candidates(c))
            if ok and ok * 2 >= len(cells) - 1:
                phone_col = i
                has_header = not phone_candidates(
                    first[i] if i < len(first) else "", mobile_only=True
                )
                break
    if phone_col is None:
        raise ImportFileError(_("No phone column found: name the column “phone” or “SĐT”."))
    result = OptOutFileResult(warnings=list(info.warnings))
    seen: dict[str, int] = {}
    batch: list[str] = []
    rowno = 0
    for record in iter_rows(file, info):
        rowno += 1
        if rowno == 1 and has_header:
            continue
        if isinstance(record, RowError):
            result.total += 1
            result.invalid += 1
            _keep_error(result, rowno, "", str(record))
            continue
        raw = record[phone_col] if phone_col < len(record) else ""
        if not raw.strip():
            if any(c.strip() for c in record):
                result.total += 1
                result.invalid += 1
                _keep_error(result, rowno, raw, _("The phone is empty."))
            continue
        result.total += 1
        phone = normalize_phone(raw, mobile_only=False, country=country)
        if not phone.ok:
            result.invalid += 1
            _keep_error(result, rowno, raw, phone.error)
            continue
        if phone.phone in seen:
            result.duplicates += 1
            _keep_error(
                result,
                rowno,
                raw,
                _("Duplicate: the same phone as row {row}.").format(row=seen[phone.phone]),
            )
            continue
        seen[phone.phone] = rowno
        batch.append(phone.phone)
        if len(batch) >= 2000:
            _opt_out_batch(batch, channel_kind, reason, source, result, actor)
            batch = []
    _opt_out_batch(batch, channel_kind, reason, source, result, actor)
    return result


def _keep_error(result: OptOutFileResult, rowno: int, raw: str, reason: str) -> None:
    if len(result.errors) < 1000:
        result.errors.append((rowno, raw, reason))


def _opt_out_batch(
    phones: list[str],
    channel_kind: str,
    reason: str,
    source: str,
    result: OptOutFileResult,
    actor=None,
) -> None:
    if not phones:
        return
    with transaction.atomic():
        Contact.objects.bulk_create(
            [Contact(phone=p, source=f"opt-out:{source}") for p in phones],
            ignore_conflicts=True,
        )
        ids = list(Contact.objects.filter(phone__in=phones).values_list("id", flat=True))
        have = set(
            OptOut.objects.filter(contact_id__in=ids, channel_kind=channel_kind).values_list(
                "contact_id", flat=True
            )
        )
        fresh = [i for i in ids if i not in have]
        OptOut.objects.bulk_create(
            [
                OptOut(contact_id=i, channel_kind=channel_kind, reason=reason[:300], source=source)
                for i in fresh
            ],
            ignore_conflicts=True,
        )
        consent_withdraw_bulk(
            contacts=fresh,
            channel_kind=channel_kind,
            source=consent_source_of_opt_out(source),
            note=reason,
            actor=actor,
        )
    result.already += len(have)
    result.opted_out += len(ids) - len(have)
