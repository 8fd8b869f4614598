"""Turning a campaign's parameter mapping and one contact into the template data we send.

A mapping is {param name: {"source": ..., "value": ..., "format": ...}} where source is
"field" (phone, name), "attribute" (a key of Contact.attributes), or "constant".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext_lazy as _

CONTACT_FIELDS = ("phone", "name")
SOURCES = ("field", "attribute", "constant")


def format_amount(value: str) -> str:
    """1000000 -> "1.000.000"; 0.3 -> "0,3" (Zalo's documented number format)."""
    try:
        number = Decimal(str(value).replace(",", "").strip())
    except InvalidOperation:
        return str(value)
    sign = "-" if number < 0 else ""
    number = abs(number)
    integer = int(number)
    frac = number - integer
    text = f"{integer:,}".replace(",", ".")
    if frac:
        text += "," + format(frac.normalize(), "f").split(".")[1]
    return sign + text


def format_currency(value: str) -> str:
    """Digits only, no decimals (Zalo currency type)."""
    try:
        return str(int(Decimal(str(value).replace(",", "").replace(".", "").strip() or "0")))
    except InvalidOperation:
        return str(value)


_DATE_INPUTS = ("%Y-%m-%d", "%d/%m/%Y", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%d-%m-%Y")


def format_date(value: str) -> str:
    if isinstance(value, datetime | date):
        return value.strftime("%d/%m/%Y")
    text = str(value).strip()
    for fmt in _DATE_INPUTS:
        try:
            return datetime.strptime(text, fmt).strftime("%d/%m/%Y")
        except ValueError:
            continue
    return text


def format_title(value: str) -> str:
    """Gender attribute -> Vietnamese salutation."""
    v = str(value).strip().lower()
    if v in ("m", "male", "nam", "anh", "mr"):
        return "Anh"
    if v in ("f", "female", "nu", "nữ", "chị", "chi", "ms", "mrs"):
        return "Chị"
    return "Anh/Chị"


FORMATTERS = {
    "": lambda v: v,
    "trim": lambda v: re.sub(r"\s+", " ", str(v)).strip(),
    "upper": lambda v: str(v).upper(),
    "amount": format_amount,
    "currency": format_currency,
    "date": format_date,
    "title": format_title,
}


@dataclass(frozen=True)
class ContactData:
    phone: str
    name: str
    attributes: dict[str, Any]


def resolve(spec: dict, contact: ContactData) -> str:
    source = spec.get("source", "constant")
    value = spec.get("value", "")
    if source == "field":
        raw = getattr(contact, value, "") if value in CONTACT_FIELDS else ""
    elif source == "attribute":
        raw = (contact.attributes or {}).get(value, "")
    else:
        raw = value
    raw = "" if raw is None else str(raw)
    formatter = FORMATTERS.get(spec.get("format", "") or "", FORMATTERS[""])
    return formatter(raw).strip() if raw != "" else ""


def render_params(mapping: dict[str, dict], contact: ContactData) -> dict[str, str]:
    return {name: resolve(spec or {}, contact) for name, spec in mapping.items()}


def render_body(body: str, data: dict[str, str]) -> str:
    """Preview text with {{param}} or <param> placeholders filled."""

    def sub(m: re.Match) -> str:
        return data.get(m.group(1).strip(), m.group(0))

    text = re.sub(r"\{\{\s*([\w.]+)\s*\}\}", sub, body or "")
    return re.sub(r"<([\w.]+)>", sub, text)


def validate_mapping(mapping: dict, param_names: list[str]) -> list[str]:
    """Structural errors of a mapping (missing params, unknown sources); empty list when fine."""
    errors = []
    for name in param_names:
        spec = mapping.get(name)
        if not spec:
            errors.append(str(_("Parameter “{name}” has no mapping.")).format(name=name))
            continue
        if spec.get("source") not in SOURCES:
            errors.append(str(_("Parameter “{name}” has an unknown source.")).format(name=name))
        if spec.get("format", "") not in FORMATTERS:
            errors.append(str(_("Parameter “{name}” has an unknown format.")).format(name=name))
    return errors
