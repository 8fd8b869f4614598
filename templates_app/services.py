"""Template services: sync from providers, audience validation, preview and test send.

Dependencies point one way (campaigns -> templates_app -> providers): where a service needs a
campaign's audience or has to pause campaigns, it imports campaigns lazily inside the function.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from providers.base import BaseProvider, OutboundMessage, ProviderError, SendOutcome
from providers.models import ChannelKind, OfficialAccount, ProviderAccount
from templates_app.content import html_to_text, render_content
from templates_app.models import Template, TemplateParam
from templates_app.param_types import param_type_from_provider
from templates_app.rendering import (
    ContactData,
    MappingError,
    compile_spec_parts,
    mapping_suggest,
    nfc,
    placeholders,
    render_body,
    validate_mapping,
)
from templates_app.validation import Problem, compile_rules, validate_data

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
# A template in one of these states must not be sent: running campaigns that use it are paused.
UNUSABLE = (S.DISABLED, S.DELETED)

_HTML_RE = re.compile(r"<\s*(p|div|span|br|table|b|strong)\b", re.IGNORECASE)


# ---- sync ----------------------------------------------------------------------------------------


@dataclass
class SyncReport:
    account_id: int
    account_name: str
    seen: int = 0
    created: int = 0
    updated: int = 0
    marked_deleted: list[str] = field(default_factory=list)
    newly_unusable: list[str] = field(default_factory=list)
    paused_campaigns: list[tuple[int, str]] = field(default_factory=list)
    blocked_campaigns: list[tuple[int, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

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
        if self.paused_campaigns:
            parts.append(
                _("Paused campaigns: {names}.").format(
                    names=", ".join(n for _i, n in self.paused_campaigns)
                )
            )
        if self.blocked_campaigns:
            parts.append(
                _(
                    "Scheduled campaigns that will not start until they get another template: {names}."
                ).format(names=", ".join(n for _i, n in self.blocked_campaigns))
            )
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
            "paused_campaigns": [i for i, _n in self.paused_campaigns],
            "errors": self.errors,
        }


def provider_lists_templates(account: ProviderAccount) -> bool:
    """Does this account's provider module implement list_templates (or must templates be entered
    by hand)?"""
    return account.provider_class.list_templates is not BaseProvider.list_templates


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ProviderError):
        from providers.errors import explain

        return explain(exc.code) or exc.message
    return _("Unexpected error: {error}").format(error=type(exc).__name__)


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


def template_params_replace(*, template: Template, params: list[dict]) -> bool:
    """Make the template's params exactly `params` (in order): update in place, add new ones,
    delete vanished ones. Returns True when anything changed."""
    existing = {p.name: p for p in template.params.all()}
    changed = False
    keep = set()
    for position, spec in enumerate(params):
        keep.add(spec["name"])
        current = existing.get(spec["name"])
        values = {**spec, "position": position}
        if current is None:
            TemplateParam.objects.create(template=template, **values)
            changed = True
            continue
        dirty = [k for k, v in values.items() if getattr(current, k) != v]
        if dirty:
            for k in dirty:
                setattr(current, k, values[k])
            current.save(update_fields=dirty)
            changed = True
    vanished = [p.pk for name, p in existing.items() if name not in keep]
    if vanished:
        TemplateParam.objects.filter(pk__in=vanished).delete()
        changed = True
    return changed


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
        "preview_url": str(item.get("preview_url") or "")[:500],
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
    synced) are left alone. Campaigns running on a template that is now disabled or deleted are
    paused with the reason.
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
    oas = {oa.oa_id: oa for oa in OfficialAccount.objects.filter(account=account)}
    scopes: list[tuple[str, OfficialAccount | None]] = [(oa_id, oa) for oa_id, oa in oas.items()]
    if not scopes:
        scopes = [("", None)]
    now = timezone.now()
    seen: set[str] = set()
    complete = True
    provider = account.get_provider()
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
                        oa=oa_id or "-", error=_error_text(exc)
                    )
                )
                continue
            for item in items or []:
                try:
                    template, created, changed, old_status = _template_upsert(
                        account=account, item=item, oas=oas, scope_oa=oa, now=now
                    )
                except Exception as exc:  # one malformed item must not stop the others
                    logger.exception("template sync item failed for account %s", account.pk)
                    complete = False
                    report.errors.append(
                        _("A template could not be saved ({id}): {error}").format(
                            id=str((item or {}).get("template_id", "?"))
                            if isinstance(item, dict)
                            else "?",
                            error=exc,
                        )
                    )
                    continue
                report.seen += 1
                seen.add(template.provider_template_id)
                report.created += int(created)
                report.updated += int(changed and not created)
                if template.status in UNUSABLE and old_status not in UNUSABLE:
                    report.newly_unusable.append(template.name)
    finally:
        provider.close()

    if complete and not seen:
        if Template.objects.filter(account=account, synced_at__isnull=False).exists():
            report.warnings.append(
                _("The provider listed no templates; nothing was marked deleted.")
            )
    elif complete:
        gone = Template.objects.filter(account=account, synced_at__isnull=False).exclude(
            provider_template_id__in=seen
        )
        for template in gone.exclude(status=S.DELETED):
            Template.objects.filter(pk=template.pk).update(
                status=S.DELETED,
                status_reason=_("No longer listed by the provider.")[:300],
                status_changed_at=now,
                synced_at=now,
            )
            report.marked_deleted.append(template.name)

    paused, blocked = campaigns_pause_for_unusable_templates(account=account)
    report.paused_campaigns += paused
    report.blocked_campaigns += blocked
    return report


def campaigns_pause_for_unusable_templates(
    *, account: ProviderAccount
) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """Pause running and scheduled campaigns of this account whose template is disabled or
    deleted. Returns (paused, not pausable). A scheduled campaign that cannot be paused will not
    start anyway: the engine's pre-flight refuses a template that is not approved."""
    from campaigns.models import Campaign
    from campaigns.services import campaign_pause

    paused, blocked = [], []
    qs = Campaign.objects.filter(
        template__account=account,
        template__status__in=UNUSABLE,
        status__in=[Campaign.Status.RUNNING, Campaign.Status.SCHEDULED],
    ).select_related("template")
    for campaign in qs:
        reason = _("Paused: the template “{name}” is {status} at the provider{reason}.").format(
            name=campaign.template.name,
            status=campaign.template.get_status_display().lower(),
            reason=f" ({campaign.template.status_reason})"
            if campaign.template.status_reason
            else "",
        )
        if campaign_pause(campaign_id=campaign.pk, reason=reason):
            paused.append((campaign.pk, campaign.name))
            logger.warning(
                "campaign %s paused: template %s unusable", campaign.pk, campaign.template_id
            )
        else:
            blocked.append((campaign.pk, campaign.name))
    return paused, blocked


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


# ---- params of what is sent ------------------------------------------------------------------


@dataclass(frozen=True)
class ParamSpec:
    """A param not stored as a TemplateParam: a free-content placeholder (plain text, required,
    no length limit of its own)."""

    name: str
    param_type: str = TemplateParam.Type.TEXT
    required: bool = True
    min_length: int = 0
    max_length: int | None = None


def template_params(template: Template) -> list:
    """The template's params in declared order; for content templates, placeholders of the body
    and subject that have no TemplateParam row are added as plain text params."""
    params = list(template.params.all())
    if template.channel_kind != ChannelKind.ZALO_ZNS:
        known = {p.name for p in params}
        params += [
            ParamSpec(n) for n in placeholders(template.subject, template.body) if n not in known
        ]
    return params


def campaign_params(campaign) -> list:
    if campaign.template_id:
        return template_params(campaign.template)
    return [ParamSpec(n) for n in placeholders(campaign.content)]


def template_params_from_body(*, template: Template) -> int:
    """Content templates (SMS, Viber, email): create a plain-text param for every {{placeholder}}
    of the subject and body that has none yet. Returns how many were added."""
    if template.channel_kind == ChannelKind.ZALO_ZNS:
        return 0
    names = placeholders(template.subject, template.body)
    existing = set(template.params.values_list("name", flat=True))
    start = template.params.count()
    new = [
        TemplateParam(
            template=template,
            name=n[:100],
            param_type=TemplateParam.Type.TEXT,
            required=True,
            position=start + i,
        )
        for i, n in enumerate(n for n in names if n not in existing)
    ]
    TemplateParam.objects.bulk_create(new)
    return len(new)


# ---- audience validation -----------------------------------------------------------------------


def _empty_raw(p, n, a) -> str:
    return ""


def _empty_finish(raw: str) -> str:
    return ""


class RecipientChecker:
    """The mapping and the param rules compiled once; `check` renders and validates one
    recipient with plain function calls. Results are memoized per distinct raw value (a gender,
    a city, a date shared by many recipients is formatted and checked once), up to a bound."""

    MEMO_LIMIT = 20_000

    def __init__(self, mapping: dict | None, params: list):
        mapping = mapping if isinstance(mapping, dict) else {}
        self.params = params
        # Values from the renderer are already NFC: the validators can count with len().
        validators = dict(compile_rules(params, nfc_input=True))
        self.items = []
        for p in params:
            try:
                raw_get, finish = compile_spec_parts(mapping.get(p.name) or {})
            except MappingError:  # reported by validate_mapping; renders empty here
                raw_get, finish = _empty_raw, _empty_finish
            self.items.append((p.name, raw_get, finish, validators[p.name], {}))
        self.names = [p.name for p in params]

    def _evaluate(self, item, phone: str, name: str, a: dict) -> tuple[str, Problem | None]:
        _pname, raw_get, finish, validate, memo = item
        raw = raw_get(phone, name, a)
        hit = memo.get(raw)
        if hit is None:
            value = finish(raw)
            hit = (value, validate(value))
            if len(memo) < self.MEMO_LIMIT:
                memo[raw] = hit
        return hit

    def render(self, phone: str, name: str, attributes: dict | None) -> dict[str, str]:
        a = attributes or {}
        return {item[0]: self._evaluate(item, phone, name, a)[0] for item in self.items}

    def check(
        self, phone: str, name: str, attributes: dict | None
    ) -> list[tuple[str, str, Problem]] | None:
        """None when every param passes, else [(param, value, problem)]."""
        a = attributes or {}
        problems = None
        limit = self.MEMO_LIMIT
        for pname, raw_get, finish, validate, memo in self.items:
            raw = raw_get(phone, name, a)
            hit = memo.get(raw)
            if hit is None:
                value = finish(raw)
                hit = (value, validate(value))
                if len(memo) < limit:
                    memo[raw] = hit
            if hit[1] is not None:
                if problems is None:
                    problems = []
                problems.append((pname, hit[0], hit[1]))
        return problems


@dataclass
class ValidationSummary:
    total: int = 0
    ok: int = 0
    failing: int = 0
    # (param, code, reason) -> recipients
    reasons: Counter = field(default_factory=Counter)
    samples: list[dict] = field(default_factory=list)
    mapping_errors: list[str] = field(default_factory=list)
    failing_ids: list[int] | None = None
    seconds: float = 0.0

    def reason_rows(self) -> list[dict]:
        return [
            {"param": p, "code": c, "reason": r, "count": n}
            for (p, c, r), n in self.reasons.most_common()
        ]

    def as_dict(self) -> dict:
        return {
            "total": self.total,
            "ok": self.ok,
            "failing": self.failing,
            "reasons": self.reason_rows(),
            "samples": self.samples,
            "mapping_errors": self.mapping_errors,
            "seconds": round(self.seconds, 3),
        }


def audience_rows(campaign, chunk: int = 5000) -> Iterator[tuple[int, str, str, dict]]:
    """(contact id, phone, name, attributes) of every recipient, in id order, streamed."""
    from campaigns.models import Contact
    from campaigns.services import audience_queryset

    # A semi-join on the ids instead of DISTINCT over whole rows (attributes included).
    qs = (
        Contact.objects.filter(pk__in=audience_queryset(campaign).values("pk"))
        .order_by("pk")
        .values_list("pk", "phone", "name", "attributes")
    )
    return qs.iterator(chunk_size=chunk)


def audience_validate(
    *,
    campaign,
    sample_limit: int = 20,
    collect_failing_ids: bool = False,
    chunk: int = 5000,
) -> ValidationSummary:
    """Render and check the mapping for every recipient of the campaign's audience.

    Nothing is stored: the summary counts recipients that pass and fail, groups failures by
    (param, reason), and keeps up to `sample_limit` failing rows to show.
    """
    started = time.monotonic()
    params = campaign_params(campaign)
    summary = ValidationSummary(failing_ids=[] if collect_failing_ids else None)
    summary.mapping_errors = validate_mapping(
        campaign.param_mapping or {}, [p.name for p in params]
    )
    checker = RecipientChecker(campaign.param_mapping, params)
    reasons = summary.reasons
    samples = summary.samples
    failing_ids = summary.failing_ids
    total = failing = 0
    check = checker.check
    for pk, phone, name, attributes in audience_rows(campaign, chunk):
        total += 1
        problems = check(phone, name, attributes)
        if problems is None:
            continue
        failing += 1
        if failing_ids is not None:
            failing_ids.append(pk)
        for pname, value, problem in problems:
            reasons[(pname, problem.code, problem.message)] += 1
            if len(samples) < sample_limit:
                samples.append(
                    {
                        "contact_id": pk,
                        "phone": phone,
                        "name": name,
                        "param": pname,
                        "value": value,
                        "reason": problem.message,
                    }
                )
    summary.total, summary.failing, summary.ok = total, failing, total - failing
    summary.seconds = time.monotonic() - started
    return summary


def audience_failing_contact_ids(*, campaign) -> list[int]:
    """Ids of recipients whose message would fail validation (to exclude them)."""
    return audience_validate(
        campaign=campaign, sample_limit=0, collect_failing_ids=True
    ).failing_ids


def audience_failure_rows(*, campaign, chunk: int = 5000) -> Iterator[tuple]:
    """(contact_id, phone, name, param, value, reason) for every failing param of every recipient,
    streamed (the downloadable report)."""
    params = campaign_params(campaign)
    checker = RecipientChecker(campaign.param_mapping, params)
    for pk, phone, name, attributes in audience_rows(campaign, chunk):
        problems = checker.check(phone, name, attributes)
        if problems:
            for pname, value, problem in problems:
                yield pk, phone, name, pname, value, problem.message


# ---- preview -----------------------------------------------------------------------------------


def _contact_data(contact: Any) -> ContactData:
    if contact is None:
        return ContactData(phone="", name="", attributes={})
    if isinstance(contact, ContactData):
        return contact
    return ContactData(
        phone=contact.phone or "",
        name=contact.name or "",
        attributes=contact.attributes or {},
        contact_id=getattr(contact, "pk", None),
    )


def template_preview(
    *,
    contact: Any = None,
    campaign=None,
    template: Template | None = None,
    mapping: dict | None = None,
) -> dict:
    """The message as this contact would receive it.

    Give a campaign (its template or free content, and its mapping), or a template with a mapping
    (default: a suggested mapping). Returns {"text", "data", "errors", ...}: `errors` maps each
    failing param to its reason; for SMS `sms` has the encoding and segment count; for email
    `subject`, `html` (sanitized) and `text` (the plain-text part).
    """
    if campaign is not None:
        template = template or campaign.template
        if mapping is None:
            mapping = campaign.param_mapping or {}
    if template is None and campaign is None:
        raise ValueError("template_preview needs a campaign or a template")
    params = template_params(template) if template is not None else campaign_params(campaign)
    if mapping is None:
        mapping = mapping_suggest(params)
    cd = _contact_data(contact)
    checker = RecipientChecker(mapping, params)
    data = checker.render(cd.phone, cd.name, cd.attributes)
    errors = validate_data(params, data)
    kind = template.channel_kind if template is not None else campaign.channel.kind
    body = template.body if template is not None else campaign.content
    out = {
        "text": "",
        "data": data,
        "errors": errors,
        "params": [p.name for p in params],
        "mapping": mapping,
        "mapping_errors": validate_mapping(mapping, [p.name for p in params]),
        "channel_kind": kind,
        "contact": {
            "id": cd.contact_id,
            "phone": cd.phone,
            "name": cd.name,
        },
        "sms": None,
        "subject": "",
        "html": "",
        "preview_url": template.preview_url if template is not None else "",
    }
    if kind == ChannelKind.ZALO_ZNS:
        out["text"] = render_body(body, data)
        return out
    rendered = render_content(
        channel_kind=kind,
        body=body,
        data=data,
        subject=template.subject if template is not None else "",
        strip_diacritics=bool(template.strip_diacritics) if template is not None else False,
    )
    out.update(
        text=rendered.text,
        subject=rendered.subject,
        html=rendered.html,
        sms=rendered.sms.as_dict() if rendered.sms else None,
    )
    return out


# ---- test send ---------------------------------------------------------------------------------


def template_test_send(
    *, template: Template, channel, phone: str, data: dict[str, str]
) -> tuple[bool, str]:
    """Send this template once to one phone in the provider's test mode (eTelecom
    mode=development, eSMS Sandbox=1) and say what the provider answered.

    The values are validated first: a value Zalo would refuse is not sent at all. No Message row
    is written; nothing here touches a campaign.
    """
    from providers.phones import normalize_phone
    from providers.redact import redact_text

    result_phone = normalize_phone(phone)
    if not result_phone.phone:
        return False, result_phone.error or _("The phone number is not valid.")
    if channel.account_id != template.account_id:
        return False, _("This channel belongs to another provider account than the template.")
    if not channel.is_active or not channel.account.is_active:
        return False, _("The channel or its provider account is inactive.")
    if channel.kind != template.channel_kind:
        return False, _(
            "This is a {template_kind} template; choose a {template_kind} channel."
        ).format(template_kind=template.get_channel_kind_display())
    params = template_params(template)
    values = {p.name: nfc(str((data or {}).get(p.name) or "").strip()) for p in params}
    errors = validate_data(params, values)
    if errors:
        return False, _("Not sent, the provider would refuse it: {errors}").format(
            errors="; ".join(f"{k}: {v}" for k, v in errors.items())
        )
    content = subject = ""
    if template.channel_kind != ChannelKind.ZALO_ZNS:
        rendered = render_content(
            channel_kind=template.channel_kind,
            body=template.body,
            data=values,
            subject=template.subject,
            strip_diacritics=template.strip_diacritics,
        )
        # Email goes out as sanitized HTML (OutboundMessage has no separate text part yet).
        content = rendered.html or rendered.text
        subject = rendered.subject
    oa_id = ""
    if channel.official_account_id:
        oa_id = channel.official_account.oa_id
    elif template.official_account_id:
        oa_id = template.official_account.oa_id
    message = OutboundMessage(
        # Unique per attempt, alphanumeric (Zalo tracking_id: <=48 chars, no special characters).
        idempotency_key=f"loatest{secrets.token_hex(10)}",
        phone=result_phone.phone,
        template_id=template.provider_template_id,
        template_data=values,
        param_order=tuple(p.name for p in params),
        channel_kind=channel.kind,
        oa_id=oa_id,
        channel_external_id=channel.external_id,
        test_mode=True,
        content=content,
        subject=subject,
    )
    provider = channel.account.get_provider()
    call = None
    try:
        result = provider.send(message)
        call = provider.pop_last_call()
    except Exception as exc:  # shown in words, never a traceback
        logger.exception("test send failed for template %s", template.pk)
        return False, _("The provider module failed: {error}").format(error=_error_text(exc))
    finally:
        provider.close()
    if call is not None and call.response_body:
        answer = call.response_body
    else:
        answer = redact_text(
            json.dumps(result.raw, ensure_ascii=False, default=str)[:2000], provider.secret_values()
        )
    if result.outcome == SendOutcome.ACCEPTED:
        return True, _(
            "Accepted by the provider in test mode (message id {id}). The provider answered: {answer}"
        ).format(id=result.provider_message_id or "-", answer=answer)
    from providers.errors import explain

    meaning = explain(result.error_code)
    return False, _(
        "Refused by the provider: {code} {message}{meaning}. The provider answered: {answer}"
    ).format(
        code=result.error_code,
        message=result.error_message,
        meaning=f" ({meaning})" if meaning and meaning != result.error_message else "",
        answer=answer,
    )
