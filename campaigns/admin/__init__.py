"""The campaigns admin: where each page lives.

- campaign.py    Campaigns: the list, the campaign page (live panel, history, replies), its actions
                 (send, pause, resume, cancel, back to draft) and exports (CSV, XLSX)
- wizard/        the campaign wizard (channel -> template -> audience -> parameters -> review):
                 forms.py the five step forms, views.py the pages (CampaignWizard)
- validation.py  a campaign's parameter check: the JSON summary, the CSV of failing rows
- messages.py    Messages: the list (campaign and error-class filters, counts from the
                 campaign's counters), the message page with its attempts
- contacts.py    Contacts (and their tags), Contact lists, Opt-outs (and the contact CSV export)
- segments.py    Segments: the rule builder, the live count and sample
- attributes.py  Attribute types: an attribute declared a date, lunar date, number or text
- imports.py     Contact imports: upload -> column mapping -> progress -> result; the opt-out
                 file upload
- dashboard.py   the dashboard on the admin index ({% load loa_admin %}, campaigns/templatetags)
- charts.py      the geometry of the server-side SVG charts (dashboard, campaign page)
- paginators.py  a changelist paginator that never runs a full COUNT(*) on big tables
- downloads.py   a streamed CSV download named after what it holds and when

The pages are thin: reads come from campaigns.selectors, writes from campaigns.engine,
campaigns.contacts and campaigns.drafts.
"""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

# Django's admin autodiscovery imports this package: each module registers its ModelAdmins.
from campaigns.admin import (  # noqa: F401
    attributes,
    campaign,
    contacts,
    imports,
    messages,
    segments,
)

# The admin is the product: name it so.
admin.site.site_header = _("Loa · campaign manager")
admin.site.site_title = _("Loa")
admin.site.index_title = _("Dashboard")
