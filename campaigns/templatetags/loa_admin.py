"""Template tags for Loa's admin pages: the dashboard on the admin index."""

import logging

from django import template
from django.db import DatabaseError

register = template.Library()
logger = logging.getLogger("loa.dashboard")


@register.simple_tag(takes_context=True)
def loa_dashboard(context):
    """The dashboard's data, trimmed to what the user may see; None for users who see none of it
    (the index then shows the app list only)."""
    from campaigns.dashboard import dashboard_data
    from campaigns.models import Campaign, Contact

    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    sees = {
        "campaigns": user.has_perm("campaigns.view_campaign"),
        "imports": user.has_perm("campaigns.view_contactimport"),
        "oas": user.has_perm("providers.view_officialaccount"),
        # Receipts arriving or not matters to whoever follows campaigns, not only to admins.
        "webhooks": user.has_perm("campaigns.view_campaign")
        or user.has_perm("providers.view_provideraccount"),
    }
    if not any(sees.values()):
        return None
    try:
        data = dashboard_data()
        has_contacts = Contact.objects.exists()
        has_campaigns = Campaign.objects.exists()
    except DatabaseError:  # the index must still open (with the app list) when a query fails
        logger.exception("dashboard failed")
        return {"error": True, "sees": sees}
    return {
        **data,
        "sees": sees,
        "has_contacts": has_contacts,
        "has_campaigns": has_campaigns,
        "can_add_campaign": user.has_perm("campaigns.add_campaign"),
        "can_import": user.has_perm("campaigns.add_contactimport"),
        "can_view_accounts": user.has_perm("providers.view_provideraccount"),
    }


@register.filter
def placeholders_marked(body: str):
    """A template body, escaped, with its {{param}} and <param> placeholders highlighted."""
    import re

    from django.utils.html import escape
    from django.utils.safestring import mark_safe

    text = escape(body or "")
    # After escaping, <param> reads &lt;param&gt;.
    text = re.sub(
        r"\{\{\s*[\w.]+\s*\}\}|&lt;[\w.]+&gt;", lambda m: f"<mark>{m.group(0)}</mark>", text
    )
    return mark_safe(text)  # noqa: S308 - built from escaped text only
