"""{% load loa_money %}: `{{ amount|vnd }}` shows an amount in VND the one way pages show it
(templates_app.formatting.format_vnd: "99.000 ₫", never with decimals)."""

from django import template

from templates_app.formatting import format_vnd

register = template.Library()


@register.filter
def vnd(value) -> str:
    return format_vnd(value)
