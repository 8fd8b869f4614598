"""The privacy room: consent records, the audit trail; the subject-access export, erasure and
the retention purge.

campaigns.privacy is its own Django app (label "privacy") inside the campaigns package. It depends
only on campaigns.models, providers and Django: campaigns.contacts, campaigns.engine and
campaigns.admin call into it (to record consent, withdrawals and audit events), so it must never
import them back (import-linter's acyclic_siblings contract).
"""
