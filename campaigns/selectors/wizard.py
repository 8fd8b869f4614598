"""The campaign wizard's reads (its pages are campaigns/admin/wizard/, its writes campaigns/drafts.py):
the channels and templates to choose from, the live audience count, the mapping step's
suggestions and sample previews, the furthest step a draft may open, the quiet-hours note.

The audience is campaigns.engine.audience's (the one definition); the sending-hours rule is
campaigns.engine.policy's; a parameter's value is checked by templates_app.validation.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from campaigns.engine.audience import audience_contacts, campaign_audience
from campaigns.engine.materialize import campaign_failing_count
from campaigns.engine.policy import (
    campaign_is_promotion,
    finish_estimate,
    promotion_allowed_at,
    sending_window,
)
from campaigns.engine.validation import campaign_validation_summary
from campaigns.models import Campaign, ContactList
from providers import zalo
from providers.models import Channel, ChannelKind
from providers.shared.text import fold
from templates_app.models import Template, TemplateParam
from templates_app.rendering import (
    ContactData,
    mapping_suggest,
    render_body,
    render_params,
    validate_mapping,
)
from templates_app.validation import validate_data

logger = logging.getLogger("loa.wizard")

# The wizard's steps, in order (their labels are the pages': campaigns/admin/wizard/views.py).
STEP_CHANNEL, STEP_TEMPLATE, STEP_AUDIENCE, STEP_MAPPING, STEP_REVIEW = 1, 2, 3, 4, 5


def wizard_channels() -> QuerySet[Channel]:
    return (
        Channel.objects.filter(is_active=True, account__is_active=True)
        .select_related("account", "official_account")
        .order_by("name")
    )


def wizard_templates(*, channel: Channel) -> QuerySet[Template]:
    """Approved templates this channel can send: same provider account and channel kind (a ZNS
    template cannot go out as an SMS), and the channel's OA or none (a template registered for
    another OA would be refused by Zalo with -117)."""
    qs = Template.objects.filter(
        account_id=channel.account_id,
        status=Template.Status.APPROVED,
        channel_kind=channel.kind,
    )
    if channel.official_account_id:
        qs = qs.filter(
            Q(official_account__isnull=True) | Q(official_account_id=channel.official_account_id)
        )
    return qs.prefetch_related("params").order_by("name")


def channel_allows_free_text(*, channel: Channel) -> bool:
    """ZNS only sends approved templates; the other kinds may send a free text."""
    return channel.kind != ChannelKind.ZALO_ZNS


def audience_count(*, channel: Channel, list_ids, segment_ids=()) -> dict:
    """Live count for the audience step: contacts chosen, opted out of this channel, recipients.

    Lists of millions make an exact count slow: on PostgreSQL it runs under a statement timeout
    and falls back to the lists' stored sizes, marked approximate.
    """
    list_ids = [int(i) for i in list_ids]
    segment_ids = [int(i) for i in segment_ids]
    if not list_ids and not segment_ids:
        return {"contacts": 0, "opted_out": 0, "recipients": 0, "approximate": False}

    def exact():
        total = audience_contacts(list_ids=list_ids, segment_ids=segment_ids).count()
        recipients = audience_contacts(
            list_ids=list_ids, segment_ids=segment_ids, exclude_opted_out_of=channel.kind
        ).count()
        return {
            "contacts": total,
            "opted_out": total - recipients,
            "recipients": recipients,
            "approximate": False,
        }

    if connection.vendor != "postgresql":
        return exact()
    try:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("SET LOCAL statement_timeout = 2000")
            return exact()
    except OperationalError:
        stored = sum(
            ContactList.objects.filter(pk__in=list_ids).values_list("contact_count", flat=True)
        )
        return {"contacts": stored, "opted_out": 0, "recipients": stored, "approximate": True}


def audience_attribute_keys(*, campaign: Campaign, sample: int = 200) -> list[str]:
    """Attribute names seen on a sample of the audience: suggestions for the mapping step."""
    keys: set[str] = set()
    qs = campaign_audience(campaign).values_list("attributes", flat=True)[:sample]
    for attrs in qs:
        if isinstance(attrs, dict):
            keys.update(str(k) for k in attrs)
    return sorted(keys)


def param_spec_suggest(*, param: TemplateParam, keys: list[str]) -> dict:
    """A first guess for one parameter, so most templates need no typing at all: the rendering
    module's suggestion, corrected to an attribute the audience really has."""
    spec = dict(mapping_suggest([param])[param.name])
    if spec["source"] == "field" or (spec["source"] == "attribute" and spec.get("value") in keys):
        return spec
    key = _attribute_for(param.name, keys)
    if key:
        return {**spec, "source": "attribute", "value": key}
    return {"source": "constant", "value": "", "format": spec.get("format", "")}


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", fold(text).lower()).strip("_")


def _attribute_for(param_name: str, keys: list[str]) -> str | None:
    """The audience attribute a parameter most likely means: the same name ("Thành phố" is
    thanh_pho), else the only attribute named like one word of it (order_code -> order)."""
    wanted = _norm(param_name)
    same = [k for k in keys if _norm(k) == wanted]
    if same:
        return same[0]
    words = set(wanted.split("_"))
    partial = [k for k in keys if _norm(k) in words]
    return partial[0] if len(partial) == 1 else None


def campaign_sample_previews(*, campaign: Campaign, limit: int = 3) -> list[dict]:
    """The message as the first few recipients will see it, with per-parameter problems."""
    if campaign.template_id is None:
        return []
    params = list(campaign.template.params.all())
    out = []
    rows = campaign_audience(campaign).order_by("pk")[:limit]
    for contact in rows:
        data = render_params(
            campaign.param_mapping or {},
            ContactData(
                phone=contact.phone, name=contact.name, attributes=contact.attributes or {}
            ),
        )
        problems = [f"“{name}”: {why}" for name, why in validate_data(params, data).items()]
        out.append(
            {
                "contact": contact,
                "data": data,
                "body": render_body(campaign.template.body, data),
                "problems": problems,
            }
        )
    return out


def campaign_mapping_check(*, campaign: Campaign) -> dict:
    """{"errors": what is wrong with the mapping itself, "summary": the per-recipient check
    (campaigns.engine.validation) once the mapping is complete, else None}."""
    result = {"errors": [], "summary": None}
    if campaign.template_id is None:
        return result
    result["errors"] = validate_mapping(
        campaign.param_mapping or {}, list(campaign.template.ordered_param_names())
    )
    if result["errors"]:
        return result  # per-row checks mean nothing while the mapping itself is incomplete
    try:
        result["summary"] = campaign_validation_summary(campaign=campaign)
    except Exception:  # a report, not a gate: the wizard must still render (the log has why)
        logger.exception("validation summary failed for campaign %s", campaign.pk)
    return result


def campaign_invalid_recipients_note(
    *, campaign: Campaign, summary: dict | None, preflight: dict
) -> dict | None:
    """The review step's "N of M recipients fail the template's rules", "N recipients cannot be
    reached on this channel (Cambodia)" (campaigns.engine.reach, per country) and what the
    campaign's choice (Campaign.invalid_recipients) makes of them; None when nobody fails and
    the channel reaches everyone. `summary` is campaign_mapping_check's (None for a free text:
    then only a missing email address can fail, counted here; None too while the mapping is
    incomplete). `preflight` is campaign_preflight's, whose "unreachable" counts recipients the
    channel cannot reach: they are not counted as failing the rules."""
    if summary is not None:
        failing, total = summary["failing"], summary["total"]
    elif campaign.template_id is None:
        failing, total = campaign_failing_count(campaign)
    else:
        failing, total = 0, preflight["recipients"]
    unreachable = preflight["unreachable"]
    if not failing and not unreachable:
        return None
    block = campaign.invalid_recipients == Campaign.InvalidRecipients.BLOCK
    will_receive = 0 if block else max(0, preflight["will_receive"] - failing)
    price = campaign.template.price if campaign.template_id else 0
    return {
        "failing": failing,
        "total": total,
        "unreachable": unreachable,
        "unreachable_rows": preflight["unreachable_rows"],
        "reach": preflight["reach"],
        "block": block,
        "will_receive": will_receive,
        "cost": price * will_receive,
    }


def wizard_reachable_step(*, campaign: Campaign | None) -> int:
    """The furthest step this draft may open: each step needs what the previous ones chose."""
    if campaign is None:
        return STEP_CHANNEL
    if campaign.template_id is None and not campaign.content:
        return STEP_TEMPLATE
    if not campaign.lists.exists() and not campaign.segments.exists():
        return STEP_AUDIENCE
    if campaign.template_id is not None and validate_mapping(
        campaign.param_mapping or {}, list(campaign.template.ordered_param_names())
    ):
        return STEP_MAPPING
    return STEP_REVIEW


def campaign_quiet_hours_note(*, campaign: Campaign, when: datetime | None = None) -> dict | None:
    """What the sending hours rules mean for this campaign at `when` (default: now): a promotion
    outside the allowed hours (campaigns.engine.policy) is blocked; Zalo's night window only
    delays."""
    if campaign.template_id is None:
        return None
    local = timezone.localtime(when or timezone.now())
    promotion = campaign_is_promotion(campaign)
    zalo_night = campaign.channel.kind == ChannelKind.ZALO_ZNS and (
        local.hour >= zalo.NIGHT_STARTS or local.hour < zalo.NIGHT_ENDS
    )
    if not promotion and not zalo_night:
        return None
    allowed, _opens = promotion_allowed_at(local)
    return {
        "promotion": promotion,
        "blocked": promotion and not allowed,
        "zalo_night": zalo_night,
    }


# With no rate limit the engine sends as fast as the provider answers: DRIVERS_PER_CAMPAIGN
# drivers of SEND_CONCURRENCY sends in flight each. Assumed: a provider answers a send in about
# 250 ms (the benchmarks' fake provider answers in 50 ms; real ones are slower).
ASSUMED_ANSWER_SECONDS = 0.25


def campaign_rate_ceiling(*, campaign: Campaign) -> float | None:
    """The fastest a campaign on this channel may send (messages/s): its provider account's
    limit, None when the account has none."""
    return campaign.channel.account.rate_limit or None


def campaign_send_rate(*, campaign: Campaign) -> tuple[float, bool]:
    """(messages/s the engine will send this campaign at, assumed?): the slower of the
    campaign's and the account's limits (campaigns.engine.driver paces at that), else an
    assumed figure for "as fast as the provider answers"."""
    rates = [r for r in (campaign.rate_limit, campaign_rate_ceiling(campaign=campaign)) if r]
    if rates:
        return float(min(rates)), False
    loa = settings.LOA
    in_flight = max(1, int(loa["SEND_CONCURRENCY"])) * max(1, int(loa["DRIVERS_PER_CAMPAIGN"]))
    return in_flight / ASSUMED_ANSWER_SECONDS, True


def campaign_zalo_night(*, campaign: Campaign) -> bool:
    """Do Zalo's night hours (22:00-06:00, error -133) hold this campaign's messages back?
    Assumed: the seeds and providers.md name the rule without the templates it covers;
    transaction messages (an OTP, an order's status) go at any hour, customer-care and
    promotion templates wait for the morning (docs/PROVIDERS.md, "Zalo's night window")."""
    return bool(
        campaign.channel.kind == ChannelKind.ZALO_ZNS
        and campaign.template_id
        and campaign.template.tag != Template.Tag.TRANSACTION
    )


def campaign_finish_note(
    *, campaign: Campaign, recipients: int, start: datetime | None = None
) -> dict:
    """The review step's "finishes at about ...": `recipients` (the count the step shows) at the
    campaign's speed, inside the hours its messages may go (a promotion waits overnight, Zalo's
    night window) and, for a Zalo OA, within its daily quota. `start` defaults to now."""
    rate, assumed = campaign_send_rate(campaign=campaign)
    window = sending_window(
        promotion=campaign_is_promotion(campaign), zalo_night=campaign_zalo_night(campaign=campaign)
    )
    oa = campaign.channel.official_account if campaign.channel.official_account_id else None
    quota = oa is not None and oa.remaining_quota is not None
    finish = finish_estimate(
        start=start or timezone.now(),
        count=recipients,
        rate=rate,
        window=window,
        quota_left=oa.remaining_quota if quota else None,
        quota_daily=(oa.daily_quota or oa.remaining_quota) if quota else None,
    )
    return {
        "finish": finish,
        "rate": rate,
        "per_minute": rate * 60,
        "assumed": assumed,
        "window": _window_text(window) if window else None,
        "quota": quota,
        "recipients": recipients,
    }


def _window_text(window: tuple[int, int]) -> tuple[str, str]:
    (a, b) = window
    return f"{a // 60:02d}:{a % 60:02d}", f"{b // 60:02d}:{b % 60:02d}"
