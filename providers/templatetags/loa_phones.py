"""{% load loa_phones %}: {{ phone|local_phone }} shows a stored phone in its country's local form
with the international form as its title (providers.shared.phone_display)."""

from __future__ import annotations

from django import template

from providers.shared.phone_display import phone_html

register = template.Library()


@register.filter
def local_phone(phone):
    return phone_html(str(phone) if phone else "")
