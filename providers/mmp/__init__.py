"""VNA MMP and Metfone MMP: one multi-channel messaging platform (Zalo, SMS, Viber, Viber bot, RCS,
WhatsApp, email) sold by two operators. One adapter, two registry entries with their own defaults.

What is known (seeds 000 and 001, providers.md §3): the table of contents of the API (Broadcast
Message, Get Message Status, templates, Send Conversation Message, Zalo consent, channel
information/status/summary, Email, Bulk Campaign), the schema names, and the two webhook payloads.
What is not public (base URL, auth header, paths, request and response bodies, status values) is
assumed, in one module, and overridable per account.

Modules:
- adapter.py: MmpProvider (sending, reconciliation, templates for the sync), VnaMmpProvider,
  MetfoneMmpProvider;
- assumed.py: every assumption about the API (paths, bodies, where answers carry each value, the
  email status values, the 404 rule, the default settings);
- callbacks.py: the two webhooks exactly as the seeds show them, and the status vocabulary;
- bodies.py: filling body and path templates, reading answers by dotted paths, merging settings;
- manage.py: the management API (replies, consent, channels, templates, bulk campaigns).
"""
