"""eSMS.vn (ViHAT) Zalo ZNS: V4 (positional Params) and V6 (named TempData) sends, journey sends,
GET callbacks, status reconciliation, templates, OAs and quotas.

Contract: seed 003 (SendZaloMessage_V4_post_json, journey) and providers.md §2. Auth is ApiKey +
SecretKey in the body or query of every call (no header auth). CodeResult 100 means "accepted by
eSMS", not delivered: the final status arrives later as an HTTP GET on CallbackUrl, or through
QueryZnsStatus / GetCallback when a callback was missed.

Modules: adapter.py (EsmsProvider: sends, reconciliation, OAs, quotas, templates), callbacks.py
(callback and status answers -> normalized statuses). The CodeResult table is in providers/errors.py
with every other code table.
"""
