"""The preview: a template rendered for one recipient's data, with every value checked.

templates_app knows no contacts: callers pass the recipient as ContactData (or a dict of its
fields). The admin's preview panel offers real recipients through a RecipientSource that the room
owning contacts installs at startup (campaigns, in CampaignsConfig.ready): the saved mappings to
preview with (campaigns using the template) and the recipient to show (by phone, picked from a
campaign's audience, or the newest contact). The default source has neither, and the panel then
shows the suggested mapping with empty values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from providers.models import ChannelKind
from templates_app.content import render_content
from templates_app.models import Template
from templates_app.params import template_params
from templates_app.rendering import ContactData, mapping_suggest, render_body, validate_mapping
from templates_app.validation import RecipientChecker, validate_data

# How the panel may pick a recipient among a saved mapping's audience.
PICKS = ("first", "longest", "failing")


@dataclass(frozen=True)
class SavedMapping:
    """A parameter mapping saved for this template elsewhere (a campaign's), to preview with."""

    pk: int
    name: str
    mapping: dict


class RecipientSource:
    """Where the preview panel finds saved mappings and real recipients. This one has none."""

    def saved_mappings(self, *, template: Template) -> list[SavedMapping]:
        """The mappings to offer, the one to use by default first."""
        return []

    def recipient(
        self, *, template: Template, saved: SavedMapping | None, pick: str, phone: str
    ) -> ContactData | None:
        """The recipient to show: by `phone` when given, else by `pick` (one of PICKS) among the
        audience of `saved`, else any. None when there is none."""
        return None


_source = RecipientSource()


def recipient_source_install(source: RecipientSource) -> None:
    """Called once at startup by the room that owns contacts."""
    global _source
    _source = source


def recipient_source() -> RecipientSource:
    return _source


def _contact_data(contact: ContactData | dict | None) -> ContactData:
    if contact is None:
        return ContactData(phone="", name="", attributes={})
    if isinstance(contact, ContactData):
        return contact
    return ContactData(
        phone=contact.get("phone") or "",
        name=contact.get("name") or "",
        attributes=contact.get("attributes") or {},
        contact_id=contact.get("contact_id"),
    )


def template_preview(
    *,
    template: Template,
    contact: ContactData | dict | None = None,
    mapping: dict | None = None,
) -> dict[str, Any]:
    """The message as this recipient would receive it, with `mapping` (default: a suggested one).

    Returns {"text", "data", "errors", ...}: `errors` maps each failing param to its reason; for
    SMS `sms` has the encoding and segment count; for email `subject`, `html` (sanitized) and
    `text` (the plain-text part).
    """
    params = template_params(template=template)
    if mapping is None:
        mapping = mapping_suggest(params)
    cd = _contact_data(contact)
    checker = RecipientChecker(mapping, params)
    data = checker.render(cd.phone, cd.name, cd.attributes)
    errors = validate_data(params, data)
    kind = template.channel_kind
    out = {
        "text": "",
        "data": data,
        "errors": errors,
        "params": [p.name for p in params],
        "mapping": mapping,
        "mapping_errors": validate_mapping(mapping, [p.name for p in params]),
        "channel_kind": kind,
        "contact": {
            "id": cd.contact_id,
            "phone": cd.phone,
            "name": cd.name,
        },
        "sms": None,
        "subject": "",
        "html": "",
        "preview_url": template.preview_url,
    }
    if kind == ChannelKind.ZALO_ZNS:
        out["text"] = render_body(template.body, data)
        return out
    rendered = render_content(
        channel_kind=kind,
        body=template.body,
        data=data,
        subject=template.subject,
        strip_diacritics=bool(template.strip_diacritics),
    )
    out.update(
        text=rendered.text,
        subject=rendered.subject,
        html=rendered.html,
        sms=rendered.sms.as_dict() if rendered.sms else None,
    )
    return out
