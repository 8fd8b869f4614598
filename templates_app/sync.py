"""Template sync: bring an account's templates in line with what its provider lists.

Templates that become unusable (disabled or deleted at the provider) are announced with the
`templates_unusable` signal (templates_app/signals.py); the rooms that use templates act on it
(campaigns pauses its running campaigns) and say what they did in the report.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from providers.base import BaseProvider, ProviderError
from providers.errors import explain
from providers.models import Channel, ChannelKind, OfficialAccount, ProviderAccount
from templates_app.content import html_to_text
from templates_app.models import Template
from templates_app.param_types import param_type_from_provider
from templates_app.params import template_params_replace
from templates_app.signals import Followup, templates_unusable

logger = logging.getLogger("loa.templates")

S = Template.Status

# Provider status words -> ours. The provider modules normalize to our words already (the
# list_templates contract); the aliases make a half-normalized answer safe rather than fatal:
# Zalo/eSMS ENABLE, PENDING_REVIEW, REJECT, DISABLE, DELETE (providers.md §2.6) and Zalo's
# template/all status numbers 1-4 (§4.2).
STATUS_ALIASES = {
    "approved": S.APPROVED,
    "enable": S.APPROVED,
    "enabled": S.APPROVED,
    "active": S.APPROVED,
    "1": S.APPROVED,
    "pending": S.PENDING,
    "pending_review": S.PENDING,
    "2": S.PENDING,
    "rejected": S.REJECTED,
    "reject": S.REJECTED,
    "3": S.REJECTED,
    "disabled": S.DISABLED,
    "disable": S.DISABLED,
    "4": S.DISABLED,
    "deleted": S.DELETED,
    "delete": S.DELETED,
}
TAG_ALIASES = {
    "transaction": Template.Tag.TRANSACTION,
    "1": Template.Tag.TRANSACTION,
    "customer_care": Template.Tag.CUSTOMER_CARE,
    "2": Template.Tag.CUSTOMER_CARE,
    "promotion": Template.Tag.PROMOTION,
    "3": Template.Tag.PROMOTION,
}
# A template in one of these states must not be sent (templates_unusable announces them).
UNUSABLE = (S.DISABLED, S.DELETED)

_HTML_RE = re.compile(r"<\s*(p|div|span|br|table|b|strong)\b", re.IGNORECASE)


@dataclass
class SyncReport:
    account_id: int
    account_name: str
    seen: int = 0
    created: int = 0
    updated: int = 0
    marked_deleted: list[str] = field(default_factory=list)
    newly_unusable: list[str] = field(default_factory=list)
    # What the receivers of templates_unusable did (campaigns: paused, could not pause).
    followups: list[Followup] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def acted(self) -> bool:
        """Did another room act on this sync (a campaign paused, ...)?"""
        return any(f.items for f in self.followups)

    def acted_on(self, code: str) -> list[tuple[int, str]]:
        """(id, name) of what the followups with this code acted on."""
        return [item for f in self.followups if f.code == code for item in f.items]

    def message(self) -> str:
        parts = [
            _(
                "{account}: {seen} template(s) from the provider, {created} new, {updated} updated."
            ).format(
                account=self.account_name,
                seen=self.seen,
                created=self.created,
                updated=self.updated,
            )
        ]
        if self.newly_unusable:
            parts.append(
                _("Disabled or deleted at the provider: {names}.").format(
                    names=", ".join(self.newly_unusable)
                )
            )
        if self.marked_deleted:
            parts.append(
                _("No longer listed (marked deleted): {names}.").format(
                    names=", ".join(self.marked_deleted)
                )
            )
        parts += [f.text for f in self.followups if f.items]
        parts += self.warnings
        parts += self.errors
        return " ".join(str(p) for p in parts)

    def as_dict(self) -> dict:
        return {
            "account": self.account_name,
            "seen": self.seen,
            "created": self.created,
            "updated": self.updated,
            "marked_deleted": self.marked_deleted,
            "newly_unusable": self.newly_unusable,
            **{f.code: [i for i, _n in f.items] for f in self.followups},
            "errors": self.errors,
        }


def provider_lists_templates(account: ProviderAccount) -> bool:
    """Does this account's provider module implement list_templates (or must templates be entered
    by hand)?"""
    return account.provider_class.list_templates is not BaseProvider.list_templates


def provider_error_text(exc: Exception) -> str:
    """A failed provider call in words (also the test send's)."""
    if isinstance(exc, ProviderError):
        return explain(exc.code) or exc.message
    return _("Unexpected error: {error}").format(error=type(exc).__name__)


def http_url_or_empty(value: Any) -> str:
    """`value` if it is an absolute http(s) URL, else "": a provider's preview_url becomes a link
    in the admin, and a javascript: or data: URL there would run in the admin's origin."""
    url = str(value or "").strip()
    parts = urlsplit(url)
    return url if parts.scheme.lower() in ("http", "https") and parts.netloc else ""


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() and d >= 0 else None


def _int(value: Any, default: int | None) -> int | None:
    try:
        n = int(value)
    except (TypeError, ValueError):
        return default
    return n if n >= 0 else default


def _params_from_item(item: dict) -> list[dict]:
    """The item's params in declared order (by `position`, then as listed), names deduplicated
    (eSMS V4: "if it's duplicated, just place it once")."""
    raw = item.get("params") or []
    indexed = []
    for i, p in enumerate(raw):
        if not isinstance(p, dict) or not str(p.get("name") or "").strip():
            continue
        indexed.append((_int(p.get("position"), i), i, p))
    indexed.sort(key=lambda t: (t[0], t[1]))
    out, seen = [], set()
    for _pos, _i, p in indexed:
        name = str(p["name"]).strip()[:100]
        if name in seen:
            continue
        seen.add(name)
        max_length = _int(p.get("max_length"), None)
        out.append(
            {
                "name": name,
                "param_type": param_type_from_provider(p.get("type")),
                "provider_type": str(p.get("type") or "")[:40],
                "required": bool(p.get("required", True)),
                "min_length": _int(p.get("min_length"), 0) or 0,
                "max_length": max_length or None,
            }
        )
    return out


def _template_upsert(
    *,
    account: ProviderAccount,
    item: dict,
    oas: dict[str, OfficialAccount],
    scope_oa: OfficialAccount | None,
    now,
) -> tuple[Template, bool, bool, str | None]:
    """Create or update one template from a list_templates item.
    Returns (template, created, changed, old_status)."""
    template_id = str(item.get("template_id") or "").strip()
    if not template_id:
        raise ValueError(_("a template without an id"))
    status = STATUS_ALIASES.get(str(item.get("status") or "").strip().lower(), S.PENDING)
    params = _params_from_item(item)
    body = str(item.get("body") or "")
    if _HTML_RE.search(body):
        # eSMS GetTemplate returns TempContent as styled HTML (providers.md §2.6); keep the text.
        # Zalo-style <param> placeholders would read as tags: turn them into {{param}} first.
        for p in params:
            body = body.replace(f"<{p['name']}>", "{{" + p["name"] + "}}")
        body = html_to_text(body)
    oa = oas.get(str(item.get("oa_id") or "")) or scope_oa
    fields: dict[str, Any] = {
        "name": (str(item.get("name") or "").strip() or template_id)[:200],
        "status": status,
        "status_reason": str(item.get("status_reason") or "")[:300],
        "preview_url": http_url_or_empty(item.get("preview_url"))[:500],
        "body": body,
        "buttons": item.get("buttons") if isinstance(item.get("buttons"), list) else [],
        "official_account": oa,
    }
    tag = TAG_ALIASES.get(str(item.get("tag") or "").strip().lower())
    if tag:
        fields["tag"] = tag
    price = _decimal(item.get("price"))
    if price is not None:
        fields["price"] = price
    if item.get("channel_kind") in ChannelKind.values:
        fields["channel_kind"] = item["channel_kind"]

    with transaction.atomic():
        template = (
            Template.objects.select_for_update()
            .filter(account=account, provider_template_id=template_id)
            .first()
        )
        created = template is None
        old_status = None if created else template.status
        if created:
            template = Template(account=account, provider_template_id=template_id)
            changed = True
        else:
            changed = any(getattr(template, k) != v for k, v in fields.items())
        for k, v in fields.items():
            setattr(template, k, v)
        if created or old_status != status:
            template.status_changed_at = now
        template.synced_at = now
        template.save()
        changed = template_params_replace(template=template, params=params) or changed
    return template, created, changed, old_status


def templates_sync(*, account: ProviderAccount) -> SyncReport:
    """Bring this account's templates in line with the provider.

    Each Zalo OA of the account is asked in turn (once with oa_id="" when it has none). Templates
    the provider no longer lists are marked deleted, but only when every call succeeded and the
    provider listed something: an empty or failed answer is more often an outage than a purge, and
    marking everything deleted would pause every campaign. Templates entered by hand (never
    synced) are left alone. Templates that may not be sent are announced (templates_unusable):
    campaigns pauses those running on them and the report says so.
    """
    report = SyncReport(account_id=account.pk, account_name=account.name)
    try:
        supported = provider_lists_templates(account)
    except KeyError:
        report.errors.append(_("This account's provider is not installed."))
        return report
    if not supported:
        report.errors.append(
            _("This provider cannot list templates; enter them by hand in the admin.")
        )
        return report
    now = timezone.now()
    seen, complete = _templates_fetch(account=account, report=report, now=now)
    if complete:
        _templates_mark_vanished(account=account, seen=seen, report=report, now=now)
    _templates_announce_unusable(account=account, report=report)
    return report


def _templates_fetch(
    *, account: ProviderAccount, report: SyncReport, now: datetime
) -> tuple[set[str], bool]:
    """Ask the provider for every OA's templates and store them. Returns (provider ids seen,
    whether every call and item succeeded)."""
    oas = {oa.oa_id: oa for oa in OfficialAccount.objects.filter(account=account)}
    scopes: list[tuple[str, OfficialAccount | None]] = [(oa_id, oa) for oa_id, oa in oas.items()]
    seen: set[str] = set()
    complete = True
    provider = account.get_provider()
    kinds: dict[str, str] = {}
    if not scopes and getattr(provider, "templates_per_channel", False):
        # MMP templates belong to a channel: ask for each channel's publicId; a template whose
        # answer names no channel kind takes its channel's.
        kinds = dict(
            Channel.objects.filter(account=account, is_active=True)
            .exclude(external_id="")
            .order_by("pk")
            .values_list("external_id", "kind")
        )
        scopes = [(channel_id, None) for channel_id in kinds]
    if not scopes:
        scopes = [("", None)]
    try:
        for oa_id, oa in scopes:
            try:
                items = provider.list_templates(oa_id=oa_id)
            except Exception as exc:  # reported in words; the other OAs still sync
                if not isinstance(exc, ProviderError):
                    logger.exception("list_templates failed for account %s", account.pk)
                complete = False
                report.errors.append(
                    _("Could not list templates for OA {oa}: {error}").format(
                        oa=oa_id or "-", error=provider_error_text(exc)
                    )
                )
                continue
            for item in items or []:
                if kinds.get(oa_id) and isinstance(item, dict) and not item.get("channel_kind"):
                    # The channel the answer names, if it is one of ours; else the one asked.
                    kind = kinds.get(str(item.get("oa_id") or "")) or kinds[oa_id]
                    item = {**item, "channel_kind": kind}
                template_id = _template_store(
                    account=account, item=item, oas=oas, scope_oa=oa, now=now, report=report
                )
                if template_id is None:
                    complete = False
                else:
                    seen.add(template_id)
    finally:
        provider.close()
    return seen, complete


def _template_store(
    *,
    account: ProviderAccount,
    item: Any,
    oas: dict[str, OfficialAccount],
    scope_oa: OfficialAccount | None,
    now: datetime,
    report: SyncReport,
) -> str | None:
    """Store one listed item and count it in the report. Returns its provider id, or None when it
    could not be saved (reported; one malformed item must not stop the others)."""
    try:
        template, created, changed, old_status = _template_upsert(
            account=account, item=item, oas=oas, scope_oa=scope_oa, now=now
        )
    except Exception as exc:
        logger.exception("template sync item failed for account %s", account.pk)
        report.errors.append(
            _("A template could not be saved ({id}): {error}").format(
                id=str((item or {}).get("template_id", "?")) if isinstance(item, dict) else "?",
                error=exc,
            )
        )
        return None
    report.seen += 1
    report.created += int(created)
    report.updated += int(changed and not created)
    if template.status in UNUSABLE and old_status not in UNUSABLE:
        report.newly_unusable.append(template.name)
    return template.provider_template_id


def _templates_mark_vanished(
    *, account: ProviderAccount, seen: set[str], report: SyncReport, now: datetime
) -> None:
    """After a complete listing: synced templates the provider no longer lists are deleted. An
    empty listing marks nothing (more often an outage than a purge)."""
    synced = Template.objects.filter(account=account, synced_at__isnull=False)
    if _lists_only_approved(account):
        _templates_ask_unlisted(
            account=account, unlisted=synced.exclude(provider_template_id__in=seen), report=report
        )
        return
    if not seen:
        if synced.exists():
            report.warnings.append(
                _("The provider listed no templates; nothing was marked deleted.")
            )
        return
    gone = synced.exclude(provider_template_id__in=seen)
    for template in gone.exclude(status=S.DELETED):
        Template.objects.filter(pk=template.pk).update(
            status=S.DELETED,
            status_reason=_("No longer listed by the provider.")[:300],
            status_changed_at=now,
            synced_at=now,
        )
        report.marked_deleted.append(template.name)


def _lists_only_approved(account: ProviderAccount) -> bool:
    """Does the provider list only its approved templates (MMP's Get List Approved Template)?
    Then a template it does not list is not gone: it may be pending, rejected or disabled."""
    return hasattr(account.provider_class, "template_fetch")


def _templates_ask_unlisted(*, account: ProviderAccount, unlisted, report: SyncReport) -> None:
    """Ask Get Template about each synced template the approved list left out (not those
    already rejected or deleted), and keep its approval state current. An error or a status
    Loa does not know changes nothing and is reported: the path is assumed, so its 404 proves
    nothing about the template."""
    asked = list(unlisted.exclude(status__in=[S.DELETED, S.REJECTED]).order_by("pk"))
    if not asked:
        return
    provider = account.get_provider()
    try:
        for template in asked:
            try:
                state = provider.template_fetch(template_id=template.provider_template_id)
            except Exception as exc:  # reported in words; the other templates are still asked
                if not isinstance(exc, ProviderError):
                    logger.exception("template_fetch failed for template %s", template.pk)
                report.warnings.append(
                    _("Could not get template {name} (not in the approved list): {error}").format(
                        name=template.name, error=provider_error_text(exc)
                    )
                )
                continue
            if state.status is None:
                report.warnings.append(
                    _(
                        "Template {name}: the provider's status “{value}” is not one Loa knows; "
                        "unchanged."
                    ).format(name=template.name, value=state.provider_status)
                )
                continue
            if state.status == template.status:
                continue
            now = timezone.now()
            Template.objects.filter(pk=template.pk).update(
                status=state.status,
                status_reason=state.reason[:300],
                status_changed_at=now,
                synced_at=now,
            )
            report.updated += 1
            if state.status in UNUSABLE and template.status not in UNUSABLE:
                report.newly_unusable.append(template.name)
    finally:
        provider.close()


def _templates_announce_unusable(*, account: ProviderAccount, report: SyncReport) -> None:
    """Send templates_unusable with every template of the account that may not be sent; what the
    receivers did goes into the report."""
    ids = list(
        Template.objects.filter(account=account, status__in=UNUSABLE).values_list("pk", flat=True)
    )
    if not ids:
        return
    for _receiver, followups in templates_unusable.send(
        sender=Template, account=account, template_ids=ids
    ):
        report.followups += followups or []


def templates_sync_all() -> list[SyncReport]:
    """Sync every active account whose provider can list templates (the daily schedule)."""
    reports = []
    for account in ProviderAccount.objects.filter(is_active=True).order_by("pk"):
        try:
            supported = provider_lists_templates(account)
        except KeyError:  # a kind no longer registered
            continue
        if supported:
            reports.append(templates_sync(account=account))
    return reports
