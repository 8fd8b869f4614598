"""Provider account services used by the admin: connection test and OA sync."""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext as _

from providers.base import ProviderError
from providers.models import OfficialAccount, ProviderAccount


def _explain(exc: Exception) -> str:
    if isinstance(exc, ProviderError):
        from providers.errors import explain

        return explain(exc.code) or exc.message
    return _("Unexpected error: {error}").format(error=type(exc).__name__)


def account_test_connection(*, account: ProviderAccount) -> tuple[bool, str]:
    provider = account.get_provider()
    try:
        return True, provider.test_connection()
    except Exception as exc:  # shown to the user in words, never a traceback
        return False, _explain(exc)
    finally:
        provider.close()


def account_sync_official_accounts(*, account: ProviderAccount) -> tuple[bool, str]:
    provider = account.get_provider()
    try:
        found = provider.list_official_accounts()
    except Exception as exc:
        return False, _explain(exc)
    finally:
        provider.close()
    now = timezone.now()
    for oa in found:
        defaults = {"name": oa.get("name") or oa["oa_id"]}
        for key in ("quality", "daily_quota", "remaining_quota"):
            if oa.get(key) is not None:
                defaults[key] = oa[key]
        if "remaining_quota" in oa:
            defaults["quota_updated_at"] = now
        OfficialAccount.objects.update_or_create(
            account=account, oa_id=str(oa["oa_id"]), defaults=defaults
        )
    return True, _("{n} Official Account(s) synced.").format(n=len(found))
