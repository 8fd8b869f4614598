"""The dashboard on the admin index (config/templates/admin/index.html, through the
`loa_dashboard` tag of campaigns/templatetags/loa_admin.py): campaigns.selectors.dashboard's
figures, trimmed to what the user may see, with the week's chart."""

from __future__ import annotations

import logging

from django.db import DatabaseError
from django.http import HttpRequest
from django.utils import formats

from campaigns.admin.charts import column_chart
from campaigns.models import Campaign, Contact
from campaigns.selectors.dashboard import dashboard_data

logger = logging.getLogger("loa.dashboard")


def dashboard_context(request: HttpRequest | None) -> dict | None:
    """The dashboard's data, trimmed to what the user may see; None for users who see none of it
    (the index then shows the app list only)."""
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
        "days_chart": column_chart(
            [
                {
                    "label": formats.date_format(d["day"], "DATE_FORMAT"),
                    "value": d["sent"],
                    "extra": d["delivered"],
                }
                for d in data["stats"]["days"]
            ]
        ),
        "sees": sees,
        "has_contacts": has_contacts,
        "has_campaigns": has_campaigns,
        "can_add_campaign": user.has_perm("campaigns.add_campaign"),
        "can_import": user.has_perm("campaigns.add_contactimport"),
        "can_view_accounts": user.has_perm("providers.view_provideraccount"),
    }
