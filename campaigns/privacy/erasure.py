"""Erasure on request: a person's phone becomes an irreversible token everywhere Loa holds it.

What an erase does (docs/PRIVACY.md has the whole data map):
- the phone becomes a keyed HMAC (`phone_token`, key LOA_ERASURE_KEY or derived from SECRET_KEY)
  kept in ErasedPhone, so that the number imported again is recognised and refused ("erased on
  request") until a new consent is recorded (`erased_phone_consent_again`);
- the contact row stays (messages point at it, PROTECT) but holds only the short form of the
  token (`contact_token`, 16 characters: Contact.phone and Message.phone hold 16); its name,
  attributes, tags, source and list memberships go, and it is opted out of every channel;
- its messages keep campaign, status, fee, times and error codes (the campaign's counters and
  costs do not move) but their phone becomes the token and their parameters are masked; their
  attempts lose the request and answer bodies;
- test sends to the number, the admin's history lines naming the contact, audit rows labelled
  with the phone and consent notes are rewritten;
- the rooms that hold other copies scrub them when told (campaigns.signals): webhooks blanks the
  raw webhook events and the inbound replies, campaigns.contacts rewrites the stored import files
  and error reports without the person's rows.

Set-based and in batches: each batch of contacts is one short transaction of a few UPDATEs keyed
by contact id (indexed), so the rows a sending campaign claims are never locked for long
(bench/erase_contacts.py measures it).

What cannot be erased from here: what the providers keep (their own logs, delivery reports) and
the messages already on the person's phone; the confirmation page says so.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import Count, F, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce, Concat, Replace, Substr
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.models import (
    CampaignTestSend,
    Contact,
    ContactList,
    ContactListMembership,
    Message,
    MessageAttempt,
    OptOut,
)
from campaigns.privacy.models import AuditEvent, ConsentRecord, ErasedPhone
from campaigns.signals import ErasedBatch, contacts_erased, erasure_finished
from providers.shared.phones import normalize_phone

logger = logging.getLogger("loa.privacy")

BATCH_SIZE = 2000
TOKEN_PREFIX = "x"  # no stored phone starts with a letter: a token is never taken for a phone
CONTACT_TOKEN_LENGTH = 16  # Contact.phone, Message.phone: max_length 16
MASK = "***"
# audit_record names a contact target "campaigns.contact" (app.model).
AUDIT_CONTACT_TYPES = ("campaigns.contact", "contact")


# ---- tokens -------------------------------------------------------------------------------------


def erasure_key() -> bytes:
    """The HMAC key: LOA_ERASURE_KEY, or one derived from SECRET_KEY (never SECRET_KEY itself, so
    the token reveals nothing about the key Django signs sessions with)."""
    key = getattr(settings, "LOA_ERASURE_KEY", "")
    if key:
        return key.encode()
    return hashlib.sha256(b"loa-erasure-key:" + settings.SECRET_KEY.encode()).digest()


def phone_token(phone: str) -> str:
    """The irreversible token of a normalized phone (84..., 855...): HMAC-SHA256, hex. Keyed,
    because there are only about a billion mobiles: an unkeyed hash is reversed by trying them."""
    return hmac.new(erasure_key(), phone.encode(), hashlib.sha256).hexdigest()


def contact_token(token: str) -> str:
    """The short form a contact and its messages hold: "x" and 15 base32 characters (75 bits of
    the HMAC; two of ten million erased phones collide with a chance below 10^-8)."""
    b32 = base64.b32encode(bytes.fromhex(token)[:10]).decode().lower()
    return (TOKEN_PREFIX + b32)[:CONTACT_TOKEN_LENGTH]


def is_erased_value(phone: str) -> bool:
    """True for a Contact.phone that is an erasure token, not a phone."""
    return bool(phone) and phone[0] == TOKEN_PREFIX and len(phone) == CONTACT_TOKEN_LENGTH


class ErasedChecker:
    """For an import: `checker(phone)` tells whether a normalized phone was erased (and not
    consented again); the phones it said yes to are in `found` (the import then redacts its own
    stored file). The tokens are read once: a million rows cost a million HMACs (~1.5 µs each)
    and set lookups."""

    def __init__(self, tokens: set[str]):
        self.tokens = tokens
        self.base = hmac.new(erasure_key(), digestmod=hashlib.sha256)
        self.found: set[str] = set()

    def __call__(self, phone: str) -> bool:
        h = self.base.copy()
        h.update(phone.encode())
        if h.hexdigest() in self.tokens:
            self.found.add(phone)
            return True
        return False


def erased_checker() -> ErasedChecker | None:
    """The import's checker, or None when no phone is suppressed (the hot loop then pays nothing)."""
    tokens = set(
        ErasedPhone.objects.filter(consent_again_at__isnull=True).values_list("token", flat=True)
    )
    return ErasedChecker(tokens) if tokens else None


def erased_phone_find(phone: str) -> ErasedPhone | None:
    """The ErasedPhone row of a phone (any format), or None."""
    result = normalize_phone(phone, mobile_only=False)
    if not result.ok:
        return None
    return ErasedPhone.objects.filter(token=phone_token(result.phone)).first()


def erased_phone_consent_again(*, phone: str) -> bool:
    """A person whose number was erased consented again (a form, the API, in person): imports take
    the number again. Returns whether a suppression was lifted. Called by whoever records the new
    consent; the consent itself is recorded by campaigns.privacy.services."""
    result = normalize_phone(phone, mobile_only=False)
    if not result.ok:
        return False
    return bool(
        ErasedPhone.objects.filter(
            token=phone_token(result.phone), consent_again_at__isnull=True
        ).update(consent_again_at=timezone.now())
    )


# ---- the erase ----------------------------------------------------------------------------------


@dataclass
class EraseResult:
    contacts: int = 0  # contacts erased now
    already: int = 0  # contacts that were already erased (nothing to do)
    messages: int = 0  # messages rewritten
    attempts: int = 0  # attempts whose bodies were blanked
    phones: set[str] = field(default_factory=set)  # normalized phones erased (not persisted)


def contacts_erase(
    *,
    contact_ids: Iterable[int],
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
    finish: bool = True,
) -> EraseResult:
    """Erase these contacts, `batch_size` per transaction. `progress(n)` is called after each
    batch with the contacts done so far. With `finish` (the default), the stored files are
    redacted at the end (erasure_finished); a caller erasing in several calls passes False and
    calls `erasure_finish` once. The audit trail is written by the callers (they know who)."""
    ids = sorted(set(int(i) for i in contact_ids))
    result = EraseResult()
    for start in range(0, len(ids), max(1, batch_size)):
        _erase_batch(ids[start : start + batch_size], result)
        if progress:
            progress(min(len(ids), start + batch_size))
    if finish:
        erasure_finish(phones=result.phones)
    return result


def erasure_finish(*, phones: set[str]) -> None:
    """Once per erase: the rooms holding files (stored imports, error reports) and unlinked raw
    events rewrite them without these phones."""
    if not phones:
        return
    nationals = frozenset(national_numbers(phones))
    erasure_finished.send(sender=Contact, phones=frozenset(phones), national=nationals)


def national_numbers(phones: Iterable[str]) -> set[str]:
    """The national part of each normalized phone ("912345678" for 84912345678): what a file or a
    body holds whatever the form it was written in (0912..., +84 912..., 84912...)."""
    out = set()
    for phone in phones:
        if phone.startswith("855"):
            out.add(phone[3:])
        elif phone.startswith("84"):
            out.add(phone[2:])
        else:
            out.add(phone)
    return out


def _erase_batch(ids: list[int], result: EraseResult) -> None:
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # A batch's commit does not wait for its WAL to reach the disk (the writes of a bulk
            # erase are most of its time on a busy disk). Durable all the same: the caller's
            # next ordinary commit (the job's status, the audit event) flushes the WAL up to it,
            # and a batch lost to a crash before that is simply erased again (idempotent).
            with connection.cursor() as cur:
                cur.execute("SET LOCAL synchronous_commit TO OFF")
        rows = list(
            Contact.objects.select_for_update().filter(pk__in=ids).values_list("pk", "phone")
        )
        tokens: dict[str, str] = {}  # phone -> full token
        todo: dict[int, str] = {}  # contact id -> short token
        for pk, phone in rows:
            if is_erased_value(phone):
                result.already += 1
                continue
            tokens[phone] = phone_token(phone)
            todo[pk] = contact_token(tokens[phone])
        if not todo:
            return
        batch_ids = list(todo)
        full = list(tokens.values())
        # New tokens, and those erased again after a new consent suppressed again (the
        # conflict clears consent_again_at): one statement.
        ErasedPhone.objects.bulk_create(
            [ErasedPhone(token=t, consent_again_at=None) for t in full],
            update_conflicts=True,
            unique_fields=["token"],
            update_fields=["consent_again_at"],
            batch_size=BATCH_SIZE,
        )

        # Attempts first: their error text is matched against the message's phone, still there.
        result.attempts += _attempts_scrub(batch_ids)
        short = {phone: contact_token(tok) for phone, tok in tokens.items()}
        _contacts_rewrite(todo)
        result.messages += _messages_scrub(todo)
        CampaignTestSend.objects.filter(contact_id__in=batch_ids).update(
            phone=Subquery(Contact.objects.filter(pk=OuterRef("contact_id")).values("phone")[:1]),
            template_data={},
            content="",
        )
        # Test sends to the number typed by hand (no contact): few rows, found in one query.
        for pk, phone in CampaignTestSend.objects.filter(phone__in=list(short)).values_list(
            "pk", "phone"
        ):
            CampaignTestSend.objects.filter(pk=pk).update(
                phone=short[phone], template_data={}, content=""
            )
        _memberships_remove(batch_ids)
        # Never messaged again: an erased contact is opted out of every channel, and the reasons
        # people typed (free text) go.
        OptOut.objects.filter(contact_id__in=batch_ids).update(reason="")
        OptOut.objects.bulk_create(
            [
                OptOut(
                    contact_id=pk,
                    channel_kind=OptOut.ALL,
                    reason=_("erased on request"),
                    source=OptOut.Source.ADMIN,
                )
                for pk in batch_ids
            ],
            ignore_conflicts=True,
        )
        ConsentRecord.objects.filter(contact_id__in=batch_ids).update(note="")
        str_ids = [str(pk) for pk in batch_ids]
        _audit_labels_rewrite(todo)
        LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(Contact), object_id__in=str_ids
        ).update(object_repr=_("erased contact"), change_message="")

        batch = ErasedBatch(contact_ids=tuple(batch_ids), tokens=short)
        contacts_erased.send(sender=Contact, batch=batch)
        result.contacts += len(batch_ids)
        result.phones.update(tokens)


def _values_cte(pairs: dict) -> tuple[str, list]:
    """`WITH v(k, tok) AS (VALUES ...)` for (key, token) pairs and its parameters: one UPDATE
    for a batch reads each row's token from it. (Django's Case/When of a thousand branches spent
    more time compiling than the database spent updating.)"""
    rows = ", ".join(["(%s, %s)"] * len(pairs))
    return f"WITH v(k, tok) AS (VALUES {rows}) ", [x for kv in pairs.items() for x in kv]


def _contacts_rewrite(todo: dict[int, str]) -> None:
    """The contacts hold only their token: name, attributes, tags, source and search text go."""
    table = Contact._meta.db_table
    cte, params = _values_cte(todo)
    with connection.cursor() as cur:
        cur.execute(
            f"{cte}UPDATE {table} SET phone = v.tok, "
            "name = '', attributes = '{}', search_text = '', tags = '[]', source = %s, "
            "source_import_id = NULL, source_row = NULL, updated_at = %s "
            f"FROM v WHERE {table}.id = v.k",
            [*params, _("erased on request"), timezone.now()],
        )


def _audit_labels_rewrite(todo: dict[int, str]) -> None:
    """Audit rows about these contacts keep who did what and when; their label (the phone, for
    searching) becomes the token. One UPDATE for the batch."""
    table = AuditEvent._meta.db_table
    cte, params = _values_cte({str(pk): tok for pk, tok in todo.items()})
    types = ", ".join(["%s"] * len(AUDIT_CONTACT_TYPES))
    with connection.cursor() as cur:
        cur.execute(
            f"{cte}UPDATE {table} SET target_label = v.tok FROM v "
            f"WHERE {table}.target_id = v.k AND {table}.target_type IN ({types})",
            [*params, *AUDIT_CONTACT_TYPES],
        )


def _attempts_scrub(contact_ids: list[int]) -> int:
    """Blank the request and answer bodies of these contacts' messages' attempts (they hold the
    phone and the parameters as sent); the error text loses the phone. Status, duration and
    error class stay for the provider's diagnostics."""
    # The ids first (the contact_id index), then the attempts by their message_id index: as one
    # statement with a subquery PostgreSQL chose to scan every attempt.
    message_ids = list(
        Message.objects.filter(contact_id__in=contact_ids).values_list("pk", flat=True)
    )
    phone = Subquery(Message.objects.filter(pk=OuterRef("message_id")).values("phone")[:1])
    done = 0
    for i in range(0, len(message_ids), 5000):  # SQLite's parameter limit; short statements
        done += MessageAttempt.objects.filter(message_id__in=message_ids[i : i + 5000]).update(
            request_body="",
            response_body="",
            error=_replace_phone(F("error"), phone),
        )
    return done


def _replace_phone(expr, phone):
    """SQL: `expr` with `phone` (84...) and its local form (0...) replaced by the mask."""
    phone = Coalesce(phone, Value("-"))
    local = Concat(Value("0"), Substr(phone, 3))
    return Replace(Replace(expr, phone, Value(MASK)), local, Value(MASK))


def _messages_scrub(todo: dict[int, str]) -> int:
    """Messages of erased contacts: phone -> the contact's token, parameters masked (their names
    kept: which template field held what is no personal data), the error text without the phone.
    Status, fee, times, attempts and provider ids stay: the campaign's counts and costs do not
    move. One UPDATE joined to the batch's (contact id, token) list: the contact_id index finds
    the rows."""
    table = Message._meta.db_table
    if connection.vendor == "postgresql":
        masked = (
            "CASE WHEN jsonb_typeof(template_data) = 'object' THEN COALESCE(("
            "SELECT jsonb_object_agg(k, to_jsonb(%s::text)) FROM jsonb_object_keys(template_data) k"
            "), '{}'::jsonb) ELSE '{}'::jsonb END"
        )
    else:
        masked = (
            f"CASE WHEN json_type(template_data) = 'object' THEN COALESCE(("
            f"SELECT json_group_object(key, %s) FROM json_each({table}.template_data)"
            f"), '{{}}') ELSE '{{}}' END"
        )
    # The local form (0 + the national number) as error texts may quote it: VN 84..., KH 855...
    local = f"'0' || substr({table}.phone, CASE WHEN {table}.phone LIKE '855%%' THEN 4 ELSE 3 END)"
    cte, params = _values_cte(todo)
    ids = ", ".join(["%s"] * len(todo))
    sql = (
        f"{cte}UPDATE {table} SET "
        f"template_data = {masked}, "
        f"error_message = CASE WHEN error_message = '' THEN '' ELSE "
        f"replace(replace(error_message, {table}.phone, %s), {local}, %s) END, "
        f"phone = v.tok, "
        f"updated_at = %s "
        # The IN list as well as the join: without it PostgreSQL hashes the VALUES and scans
        # the whole message table for every batch; with it, the contact_id index.
        f"FROM v WHERE {table}.contact_id = v.k AND {table}.contact_id IN ({ids})"
    )
    with connection.cursor() as cur:
        cur.execute(sql, [*params, MASK, MASK, MASK, timezone.now(), *todo])
        if cur.rowcount >= 0:
            return cur.rowcount
    # SQLite reports no row count for an UPDATE led by a WITH clause.
    return Message.objects.filter(contact_id__in=list(todo)).count()


def _memberships_remove(contact_ids: list[int]) -> None:
    """Out of every list (which lists a person is on is personal data); the lists' counts follow."""
    per_list = dict(
        ContactListMembership.objects.filter(contact_id__in=contact_ids)
        .values("contact_list_id")
        .annotate(n=Count("pk"))
        .values_list("contact_list_id", "n")
    )
    if not per_list:
        return
    ContactListMembership.objects.filter(contact_id__in=contact_ids).delete()
    for list_id, n in per_list.items():
        ContactList.objects.filter(pk=list_id, contact_count__gte=n).update(
            contact_count=F("contact_count") - n
        )
