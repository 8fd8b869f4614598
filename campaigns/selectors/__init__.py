"""Reads for the admin's pages (selectors: they never write). Where each page's data lives:

- campaign.py     a campaign's page: stats from its counters, allowed actions, the pre-flight,
                  why contacts were left out, the live panel's timeline and failure reasons,
                  its recipients' replies
- contact.py      a contact's page: the messages Loa sent them, their replies
- export.py       a campaign's results as a streamed CSV
- export_xlsx.py  the same as an Excel workbook (openpyxl, loaded on the first export)
- dashboard.py    the admin index: the week's message figures, active campaigns, OA quotas,
                  failed imports, webhook health (cached for a minute)
- wizard.py       the campaign wizard's reads: channels, templates for a channel, the live
                  audience count, mapping suggestions, sample previews, the furthest step a
                  draft may open, the quiet-hours note
"""
