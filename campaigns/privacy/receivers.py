"""Signal receivers of the privacy room: provider account changes in the audit trail.

providers/ is the bottom room and may not import campaigns, so it cannot call audit_record: the
audit trail listens instead, to the providers' own models' pre_save / post_save / post_delete
(connected in PrivacyConfig.ready). A model signal, not the admin's LogEntry: a change made
outside the admin (the API, a shell) is a change too.

Only a person's change is recorded (saved while serving a logged-in user's request, found through
campaigns.privacy.middleware): workers save these rows on their own all day (a refreshed token,
the OA's remaining quota, the last callback time), and that is not who-did-what. Creating or
deleting one is always recorded. The detail names the fields that changed, never their values
(secrets are among them).
"""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save, pre_save

from campaigns.privacy.middleware import current_request
from campaigns.privacy.models import AuditAction
from campaigns.privacy.services import audit_record
from providers.models import Channel, OfficialAccount, ProviderAccount

WATCHED = (ProviderAccount, Channel, OfficialAccount)
# Written by workers and webhooks, never a person's decision.
_AUTOMATIC = {
    "updated_at",
    "last_callback_at",
    "reconciliation_unavailable",
    "reconciliation_checked_at",
    "remaining_quota",
    "quota_updated_at",
    "quality",
}


def _person():
    request = current_request.get()
    user = getattr(request, "user", None) if request is not None else None
    return request if getattr(user, "is_authenticated", False) else None


def provider_before_save(sender, instance, raw=False, **kwargs) -> None:
    """Keep the stored values of a row a person is about to change (to name what changed)."""
    if raw or instance.pk is None or _person() is None:
        return
    instance._audit_before = (
        sender.objects.filter(pk=instance.pk)
        .values(*[f.attname for f in sender._meta.concrete_fields])
        .first()
    )


def provider_after_save(sender, instance, created=False, raw=False, **kwargs) -> None:
    if raw:
        return
    request = _person()
    if request is None and not created:
        return
    before = getattr(instance, "_audit_before", None) or {}
    instance._audit_before = None
    changed = sorted(
        f.name
        for f in sender._meta.concrete_fields
        if f.attname in before
        and f.name not in _AUTOMATIC
        and before[f.attname] != getattr(instance, f.attname)
    )
    if not created and not changed:
        return
    audit_record(
        action=AuditAction.PROVIDER_ACCOUNT_CHANGE,
        request=request,
        target=instance,
        detail={"created": True} if created else {"changed": changed},
    )


def provider_after_delete(sender, instance, **kwargs) -> None:
    audit_record(
        action=AuditAction.PROVIDER_ACCOUNT_CHANGE,
        request=_person(),
        target=instance,
        detail={"deleted": True},
    )


def connect() -> None:
    for model in WATCHED:
        uid = f"privacy_audit_{model._meta.label_lower}"
        pre_save.connect(provider_before_save, sender=model, dispatch_uid=f"{uid}_pre")
        post_save.connect(provider_after_save, sender=model, dispatch_uid=f"{uid}_post")
        post_delete.connect(provider_after_delete, sender=model, dispatch_uid=f"{uid}_delete")


# ---- API keys (campaigns/api, a sibling that imports this room; wired in its AppConfig) ----------
# The API's key model lives in campaigns.api, which imports campaigns.privacy (never the
# reverse). Its key-creating service calls, after creating the key:
#
#     audit_record(action=AuditAction.API_KEY_CREATE, actor=user, request=request,
#                  target=key, detail={"scopes": [...]})   # never the key's secret
#
# or, if it prefers a signal, connects in its AppConfig.ready:
#
#     post_save.connect(api_key_created_receiver, sender=ApiKey, dispatch_uid="privacy_api_key")
#
# with the receiver below (it records creations only; a key's later saves are its own business).


def api_key_created_receiver(sender, instance, created=False, raw=False, **kwargs) -> None:
    """A post_save receiver for the API's key model: "api_key.create" with the key's name and
    id, never its secret (str(instance) must not contain it)."""
    if raw or not created:
        return
    audit_record(
        action=AuditAction.API_KEY_CREATE,
        request=_person(),
        target=instance,
        detail={"name": str(getattr(instance, "name", ""))[:100]},
    )
