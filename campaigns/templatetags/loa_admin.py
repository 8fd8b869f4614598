"""{% load loa_admin %}: the template tags of Loa's admin pages. Django looks for an app's tag
libraries here; what they show is computed with the pages, in campaigns/admin/."""

import re

from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe

from campaigns.admin.dashboard import dashboard_context

register = template.Library()


@register.simple_tag(takes_context=True)
def loa_dashboard(context):
    """The admin index's dashboard (campaigns/admin/dashboard.py); None for users who see none
    of it."""
    return dashboard_context(context.get("request"))


@register.filter
def placeholders_marked(body: str):
    """A template body, escaped, with its {{param}} and <param> placeholders highlighted."""
    text = escape(body or "")
    # After escaping, <param> reads &lt;param&gt;.
    text = re.sub(
        r"\{\{\s*[\w.]+\s*\}\}|&lt;[\w.]+&gt;", lambda m: f"<mark>{m.group(0)}</mark>", text
    )
    return mark_safe(text)  # noqa: S308 - built from escaped text only
