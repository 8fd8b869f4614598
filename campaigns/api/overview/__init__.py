"""API messages beside campaigns, in the admin: per application and day, the messages by status
and their cost (selectors.py), and a search by phone or client reference (views.py renders
templates/admin/api/overview.html; the URL is registered by the delivery log's admin)."""
