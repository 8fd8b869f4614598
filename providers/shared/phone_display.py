"""Phones on pages: what a person reads is the local form of the phone's country
("0912 345 678", "012 345 678"), with the stored international form a hover away (its title)
for whoever must tell the country or copy the number a provider is sent. Stored and sent phones
never change: this is display only (the spreadsheets' twin is their "phone_local" column)."""

from __future__ import annotations

from django.utils.html import format_html
from django.utils.safestring import SafeString

from providers.shared.phones import format_local


def phone_international(phone: str) -> str:
    """The stored phone as written internationally: 84912345678 -> "+84912345678"."""
    return "+" + phone.lstrip("+") if phone and phone.lstrip("+").isdigit() else phone or ""


def phone_html(phone: str | None) -> SafeString | str:
    """<span title="+84912345678">0912 345 678</span>; "" for no phone; a value that is not a
    stored phone (a provider's sender id) is shown as it is, escaped."""
    if not phone:
        return ""
    local = format_local(phone)
    international = phone_international(phone)
    if local == phone or international == phone:
        return format_html('<span class="loa-phone">{}</span>', phone)
    return format_html('<span class="loa-phone" title="{}">{}</span>', international, local)
