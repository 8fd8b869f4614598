"""A person's data on request (subject access): one file, XLSX or JSON, with everything Loa holds
about a phone.

Sections: the contact, its attributes, tags and lists, consents and opt-outs, every message with
its attempts (this module, from campaigns' own tables), and what the other rooms add through
`subject_section_add` (filled at startup): the imports whose file held the number
(campaigns.contacts.importing.redact), the replies and the provider callbacks (webhooks.privacy:
campaigns may not import webhooks, so webhooks registers its sections here).

The export is recorded in the audit trail (subject.export, with the number of rows) by the
caller's service `subject_export`.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.models import (
    CampaignTestSend,
    Contact,
    ContactListMembership,
    Message,
    MessageAttempt,
    OptOut,
)
from campaigns.privacy.erasure import contact_token, erased_phone_find, phone_token
from campaigns.privacy.models import AuditAction, ConsentRecord
from campaigns.privacy.services import audit_record
from providers.shared.errors import Refused
from providers.shared.phones import format_local, normalize_phone

FORMATS = ("xlsx", "json")
_ILLEGAL = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")  # what XML 1.0 cannot hold


@dataclass(frozen=True)
class SubjectQuery:
    phone: str  # normalized: 84..., 855...
    contact: Contact | None


Section = Callable[[SubjectQuery], list[dict]]
_SECTIONS: dict[str, tuple[object, Section]] = {}


def subject_section_add(key: str, title, reader: Section) -> None:
    """A room above (or a sibling package) adds a section: `reader(query)` returns its rows, one
    dict each (same keys in every row). Called from AppConfig.ready; a second call with the same
    key replaces the first (tests reload apps)."""
    _SECTIONS[key] = (title, reader)


@dataclass
class SubjectFile:
    content: bytes
    filename: str
    content_type: str
    rows: int  # rows in every section together


def subject_data(*, phone: str) -> tuple[str, dict[str, tuple[str, list[dict]]]]:
    """(normalized phone, {section key: (title, rows)}). The phone in any format (0912...,
    +84 912..., 84912...). Raises Refused for something that is not a phone."""
    result = normalize_phone(phone or "", mobile_only=False)
    if not result.ok:
        raise Refused(
            _("“{value}” is not a phone number: {error}").format(value=phone, error=result.error),
            code="subject_phone_invalid",
        )
    normalized = result.phone
    contact = Contact.objects.filter(phone=normalized).first()
    query = SubjectQuery(phone=normalized, contact=contact)
    sections: dict[str, tuple[str, list[dict]]] = {
        "contact": (_("Contact"), _contact_rows(query)),
        "attributes": (_("Attributes"), _attribute_rows(query)),
        "lists": (_("Lists"), _list_rows(query)),
        "consents": (_("Consents"), _consent_rows(query)),
        "opt_outs": (_("Opt-outs"), _optout_rows(query)),
        "messages": (_("Messages"), _message_rows(query)),
        "attempts": (_("Sending attempts"), _attempt_rows(query)),
        "test_sends": (_("Test sends"), _test_send_rows(query)),
    }
    for key, (title, reader) in _SECTIONS.items():
        sections[key] = (str(title), reader(query))
    return normalized, sections


def subject_export(*, phone: str, fmt: str = "xlsx", actor=None, request=None) -> SubjectFile:
    """The file, recorded in the audit trail (who, when, from where, how many rows)."""
    if fmt not in FORMATS:
        raise Refused(_("Choose XLSX or JSON."), code="subject_format")
    normalized, sections = subject_data(phone=phone)
    rows = sum(len(r) for _t, r in sections.values())
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    contact = Contact.objects.filter(phone=normalized).first()
    if fmt == "json":
        content = _as_json(normalized, sections)
        ctype = "application/json"
    else:
        content = _as_xlsx(normalized, sections)
        ctype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    audit_record(
        action=AuditAction.SUBJECT_EXPORT,
        actor=actor,
        request=request,
        target=contact,
        # A number Loa does not hold is named by its token: the trail never keeps a phone that
        # an erase could not find again.
        target_type="" if contact else "phone",
        target_label="" if contact else contact_token(phone_token(normalized)),
        rows=rows,
        detail={"format": fmt, "sections": {k: len(r) for k, (_t, r) in sections.items()}},
    )
    return SubjectFile(
        content=content,
        filename=f"subject-{normalized}-{stamp}.{fmt}",
        content_type=ctype,
        rows=rows,
    )


# ---- sections -----------------------------------------------------------------------------------


def _contact_rows(q: SubjectQuery) -> list[dict]:
    erased = erased_phone_find(q.phone)
    if q.contact is None:
        return [
            {
                "phone": q.phone,
                "phone_local": format_local(q.phone),
                "in_loa": False,
                "erased_at": erased.erased_at if erased else None,
            }
        ]
    c = q.contact
    return [
        {
            "phone": c.phone,
            "phone_local": format_local(c.phone),
            "in_loa": True,
            "name": c.name,
            "tags": ", ".join(c.tags or []),
            "source": c.source,
            "source_import": c.source_import_id,
            "source_row": c.source_row,
            "created_at": c.created_at,
            "updated_at": c.updated_at,
            "erased_at": erased.erased_at if erased else None,
        }
    ]


def _attribute_rows(q: SubjectQuery) -> list[dict]:
    if q.contact is None or not isinstance(q.contact.attributes, dict):
        return []
    return [{"attribute": k, "value": v} for k, v in sorted(q.contact.attributes.items())]


def _list_rows(q: SubjectQuery) -> list[dict]:
    if q.contact is None:
        return []
    return [
        {"list": m.contact_list.name, "added_at": m.added_at}
        for m in ContactListMembership.objects.filter(contact=q.contact)
        .select_related("contact_list")
        .order_by("added_at")
    ]


def _consent_rows(q: SubjectQuery) -> list[dict]:
    if q.contact is None:
        return []
    return [
        {
            "at": r.at,
            "channel": r.get_channel_kind_display(),
            "purpose": r.get_purpose_display(),
            "granted": r.granted,
            "source": r.get_source_display(),
            "import": r.contact_import_id,
            "file_name": r.file_name,
            "note": r.note,
            "recorded_by": r.actor_label,
        }
        for r in ConsentRecord.objects.filter(contact=q.contact).order_by("at", "pk")
    ]


def _optout_rows(q: SubjectQuery) -> list[dict]:
    if q.contact is None:
        return []
    return [
        {
            "channel": o.get_channel_kind_display(),
            "source": o.get_source_display(),
            "reason": o.reason,
            "opted_out_at": o.created_at,
        }
        for o in OptOut.objects.filter(contact=q.contact).order_by("created_at")
    ]


def _message_rows(q: SubjectQuery) -> list[dict]:
    if q.contact is None:
        return []
    messages = (
        Message.objects.filter(contact=q.contact)
        .select_related("campaign", "campaign__template")
        .order_by("created_at", "pk")
    )
    return [
        {
            "message_id": m.pk,
            "campaign": m.campaign.name,
            "campaign_id": m.campaign_id,
            "template": str(m.campaign.template) if m.campaign.template_id else "",
            "phone": m.phone,
            "parameters": json.dumps(m.template_data, ensure_ascii=False),
            "status": m.get_status_display(),
            "provider_message_id": m.provider_message_id,
            "error_code": m.error_code,
            "error": m.error_message,
            "fee": m.fee,
            "attempts": m.attempts,
            "created_at": m.created_at,
            "sent_at": m.sent_at,
            "delivered_at": m.delivered_at,
            "read_at": m.read_at,
            "failed_at": m.failed_at,
        }
        for m in messages
    ]


def _attempt_rows(q: SubjectQuery) -> list[dict]:
    if q.contact is None:
        return []
    return [
        {
            "message_id": a.message_id,
            "at": a.created_at,
            "http_status": a.status_code,
            "duration_ms": a.duration_ms,
            "error": a.error,
            "request": a.request_body,
            "answer": a.response_body,
        }
        for a in MessageAttempt.objects.filter(message__contact=q.contact).order_by("created_at")
    ]


def _test_send_rows(q: SubjectQuery) -> list[dict]:
    """A campaign's test sends to the number (typed by hand or picked as the contact)."""
    match = Q(phone=q.phone) | (Q(contact=q.contact) if q.contact is not None else Q(pk__in=[]))
    return [
        {
            "campaign": t.campaign.name,
            "sent_at": t.created_at,
            "outcome": t.get_outcome_display(),
            "values": json.dumps(t.template_data, ensure_ascii=False),
            "text": t.content,
            "error": t.error_message,
        }
        for t in CampaignTestSend.objects.filter(match).select_related("campaign").order_by("pk")
    ]


# ---- files --------------------------------------------------------------------------------------


def _plain(value):
    if isinstance(value, datetime):
        return timezone.localtime(value).isoformat() if timezone.is_aware(value) else value
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _as_json(phone: str, sections) -> bytes:
    doc = {
        "phone": phone,
        "generated_at": timezone.localtime().isoformat(),
        "sections": {
            key: {"title": str(title), "rows": [{k: _plain(v) for k, v in r.items()} for r in rows]}
            for key, (title, rows) in sections.items()
        },
    }
    return json.dumps(doc, ensure_ascii=False, indent=2, default=str).encode("utf-8")


def _as_xlsx(phone: str, sections) -> bytes:
    """One sheet per section. Text cells are strings even when they start with "=" (never a
    formula); times are local (Excel has no time zones)."""
    from openpyxl import Workbook  # noqa: PLC0415 - a heavy package, only for this export
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    wb = Workbook(write_only=True)
    bold = Font(bold=True)
    for _key, (title, rows) in sections.items():
        ws = wb.create_sheet(title=str(title)[:31])

        def cell(value, ws=ws):
            if isinstance(value, datetime):
                value = timezone.localtime(value).replace(tzinfo=None)
            elif isinstance(value, Decimal):
                value = float(value)
            elif isinstance(value, dict | list):
                value = json.dumps(value, ensure_ascii=False)
            if isinstance(value, str):
                value = _ILLEGAL.sub("", value)[:32000]  # Excel's cell limit is 32,767
                c = WriteOnlyCell(ws, value=value)
                c.data_type = "s"
                return c
            return value

        if not rows:
            ws.append([_("Nothing held.")])
            continue
        header = []
        for key in rows[0]:
            c = WriteOnlyCell(ws, value=key)
            c.font = bold
            header.append(c)
        ws.append(header)
        for row in rows:
            ws.append([cell(v) for v in row.values()])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
