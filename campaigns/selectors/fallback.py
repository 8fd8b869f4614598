"""What a fallback chain will do and did (issue 19): each step's checks for the wizard, the
pre-flight's expected fallback share, and the campaign page's funnel per step with the cost per
channel.

The funnel is one aggregate over the campaign's messages grouped by step, read only for a
campaign that has a chain (a chain-less campaign's page reads its counters, as before): on
PostgreSQL about 0.3 s per million messages, through the (campaign, contact, step) index."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.utils.translation import gettext as _

from campaigns.engine.fallback import campaign_chain, campaign_step_view
from campaigns.engine.reach import campaign_unreachable
from campaigns.models import Campaign, FallbackStep, Message
from campaigns.selectors.wizard import campaign_mapping_check

S = Message.Status
# The share assumed to fall back when no earlier campaign on the channel says otherwise: a ZNS
# list commonly has 10-20% of numbers without a (reachable) Zalo account (issue 19). Stated on
# the page as a default, never as a measurement.
DEFAULT_SHARE = Decimal("0.15")
RECENT_CAMPAIGNS = 5
_REACHED = [S.DELIVERED, S.READ]
_NOT_HANDED = [S.SKIPPED, S.CANCELLED, S.PENDING]


def chain_steps(*, campaign: Campaign) -> list[FallbackStep]:
    return campaign_chain(campaign.pk, native=True)


def fallback_step_checks(*, campaign: Campaign, step: FallbackStep) -> dict:
    """For the wizard: who the step's channel cannot reach among the campaign's recipients,
    and the step's template rules checked for every recipient (the step's own mapping)."""
    view = campaign_step_view(campaign, step)
    unreachable = campaign_unreachable(view)
    ready = bool(step.template_id or step.content)
    return {
        "unreachable": unreachable.total,
        "unreachable_rows": unreachable.rows(),
        "reach": unreachable.reach.countries_text(),
        "validation": campaign_mapping_check(campaign=view) if ready else None,
        "ready": ready,
    }


@dataclass
class Estimate:
    share: Decimal  # expected share of recipients who fall to step 1
    measured: bool  # False: DEFAULT_SHARE, no earlier campaign on this channel
    campaigns: int  # how many earlier campaigns it comes from
    recipients: int = 0
    fallbacks: int = 0
    cost: Decimal = Decimal(0)  # the fallbacks' expected cost, when the step's price is known
    price_known: bool = False
    text: str = ""


def campaign_fallback_estimate(*, campaign: Campaign, recipients: int) -> Estimate | None:
    """The pre-flight's expected fallback share: from the last campaigns on the same channel
    (their first-step messages that were handed over and never delivered or read: an upper
    bound, since a failure the provider does not mark as "cannot reach" does not fall back),
    else DEFAULT_SHARE, said to be a default. None without a chain."""
    steps = chain_steps(campaign=campaign)
    if not steps:
        return None
    recent = list(
        Campaign.objects.filter(
            channel_id=campaign.channel_id,
            status__in=[Campaign.Status.COMPLETED, Campaign.Status.SETTLING],
        )
        .exclude(pk=campaign.pk)
        .order_by("-started_at", "-pk")
        .values_list("pk", flat=True)[:RECENT_CAMPAIGNS]
    )
    handed = missed = 0
    if recent:
        row = (
            Message.objects.filter(campaign_id__in=recent, step=0)
            .exclude(status__in=_NOT_HANDED)
            .aggregate(n=Count("pk"), missed=Count("pk", filter=~Q(status__in=_REACHED)))
        )
        handed, missed = row["n"], row["missed"]
    if handed:
        share = (Decimal(missed) / Decimal(handed)).quantize(Decimal("0.001"))
        est = Estimate(share, True, len(recent))
        est.text = _(
            "Expected to fall back: {pct} of recipients, measured on the last {n} campaigns "
            "on this channel (their messages that were not delivered)."
        ).format(pct=_pct(share), n=len(recent))
    else:
        est = Estimate(DEFAULT_SHARE, False, 0)
        est.text = _(
            "Expected to fall back: {pct} of recipients, a default (no earlier campaign on this "
            "channel to measure it on)."
        ).format(pct=_pct(DEFAULT_SHARE))
    est.recipients = recipients
    est.fallbacks = int((Decimal(recipients) * est.share).to_integral_value())
    first = steps[0]
    if first.template_id and first.template.price is not None:
        est.price_known = True
        est.cost = first.template.price * est.fallbacks
    return est


@dataclass
class StepRow:
    step: int
    channel: str
    channel_kind: str
    messages: int = 0
    sent: int = 0  # handed to the provider (sent, delivered, read, and failed after sending)
    delivered: int = 0  # delivered or read
    failed: int = 0
    skipped: int = 0
    pending: int = 0
    cost: Decimal = Decimal(0)
    fell_back: int = 0  # recipients of this step who got the next one
    pct_delivered: str = ""
    pct_fell_back: str = ""
    native: bool = False  # sent by the provider's own fallback (campaigns.engine.native)


@dataclass
class Funnel:
    recipients: int
    steps: list[StepRow] = field(default_factory=list)
    cost_total: Decimal = Decimal(0)
    reached: int = 0  # recipients some step reached (delivered or read)
    reached_pct: str = ""
    cost_by_channel: list[tuple[str, Decimal]] = field(default_factory=list)


def campaign_step_funnel(*, campaign: Campaign) -> Funnel | None:
    """Per step: messages, delivered (% of recipients), fell back to the next (% of
    recipients), failed, skipped, cost; the cost per channel and in total. None without a
    chain, or before the campaign built its messages."""
    steps = chain_steps(campaign=campaign)
    if not steps:
        return None
    rows = (
        Message.objects.filter(campaign_id=campaign.pk)
        .values("step")
        .annotate(
            n=Count("pk"),
            delivered=Count("pk", filter=Q(status__in=_REACHED)),
            failed=Count("pk", filter=Q(status=S.FAILED)),
            skipped=Count("pk", filter=Q(status__in=[S.SKIPPED, S.CANCELLED])),
            pending=Count("pk", filter=Q(status__in=[S.PENDING, S.SENDING])),
            cost=Sum("fee"),
        )
        .order_by("step")
    )
    by_step = {r["step"]: r for r in rows}
    if not by_step:
        return None
    channels = [campaign.channel, *[s.channel for s in steps]]
    natives = {s.position for s in steps if s.mode == FallbackStep.Mode.PROVIDER}
    recipients = by_step.get(0, {}).get("n", 0)
    funnel = Funnel(recipients=recipients)
    costs: dict[str, Decimal] = {}
    for i, channel in enumerate(channels):
        r = by_step.get(i) or {}
        row = StepRow(
            step=i,
            channel=channel.name,
            channel_kind=channel.get_kind_display(),
            messages=r.get("n", 0),
            delivered=r.get("delivered", 0),
            failed=r.get("failed", 0),
            skipped=r.get("skipped", 0),
            pending=r.get("pending", 0),
            cost=r.get("cost") or Decimal(0),
            native=i in natives,
        )
        if row.native:
            # The provider's SMS is charged by the campaign's own provider account.
            row.channel = _("{channel} via {provider}'s own fallback").format(
                channel=channel.name, provider=campaign.channel.account.name
            )
        row.sent = row.messages - row.skipped - row.pending
        nxt = by_step.get(i + 1)
        row.fell_back = nxt["n"] if nxt else 0
        row.pct_delivered = _pct(_share(row.delivered, recipients))
        row.pct_fell_back = _pct(_share(row.fell_back, recipients))
        funnel.steps.append(row)
        funnel.reached += row.delivered
        funnel.cost_total += row.cost
        label = f"{row.channel} ({channel.get_kind_display()})"
        costs[label] = costs.get(label, Decimal(0)) + row.cost
    funnel.reached_pct = _pct(_share(funnel.reached, recipients))
    funnel.cost_by_channel = list(costs.items())
    return funnel


@dataclass
class RecipientSteps:
    """One recipient of a chained campaign: each step's message (status, time, error, fee) and
    the step that reached them (None: none yet)."""

    message_id: int  # step 0's message: the page's keyset cursor
    phone: str
    name: str
    steps: list[dict | None]  # per step 0..n: {status, label, at, error_code, fee} or None
    reached_by: int | None


@dataclass
class RecipientPage:
    rows: list[RecipientSteps]
    steps: int  # how many steps the chain has, step 0 included
    next_after: int | None  # the cursor of the next page (None: the last page)
    after: int = 0


RECIPIENTS_PER_PAGE = 50
_STEP_FIELDS = (
    "contact_id",
    "step",
    "status",
    "sent_at",
    "delivered_at",
    "read_at",
    "failed_at",
    "updated_at",
    "error_code",
    "fee",
)


def campaign_recipient_steps(
    *, campaign: Campaign, after: int = 0, limit: int = RECIPIENTS_PER_PAGE
) -> RecipientPage | None:
    """Per recipient, which step reached them, a page at a time: keyset pagination on step 0's
    message id (`after`), so page 2,000 costs what page 1 does (an OFFSET would read every row
    before it). Two queries: the page's step-0 rows, then the other steps' rows of those
    contacts through the (campaign, contact, step) index. None without a chain."""
    steps = chain_steps(campaign=campaign)
    if not steps:
        return None
    first = list(
        Message.objects.filter(campaign_id=campaign.pk, step=0, pk__gt=after)
        .order_by("pk")
        .values("pk", "contact__name", "phone", *_STEP_FIELDS)[: limit + 1]
    )
    more = len(first) > limit
    first = first[:limit]
    later: dict[tuple[int, int], dict] = {
        (r["contact_id"], r["step"]): r
        for r in Message.objects.filter(
            campaign_id=campaign.pk,
            step__gt=0,
            contact_id__in=[r["contact_id"] for r in first if r["contact_id"]],
        ).values(*_STEP_FIELDS)
    }
    n = len(steps) + 1
    rows = []
    for r in first:
        cells = [_cell(r)] + [_cell(later.get((r["contact_id"], i))) for i in range(1, n)]
        reached = next((i for i, c in enumerate(cells) if c and c["status"] in _REACHED), None)
        rows.append(
            RecipientSteps(
                message_id=r["pk"],
                phone=r["phone"],
                name=r["contact__name"] or "",
                steps=cells,
                reached_by=reached,
            )
        )
    return RecipientPage(
        rows=rows, steps=n, next_after=first[-1]["pk"] if more and first else None, after=after
    )


def _cell(row: dict | None) -> dict | None:
    if row is None:
        return None
    status = row["status"]
    at = {
        S.DELIVERED: row["delivered_at"],
        S.READ: row["read_at"],
        S.FAILED: row["failed_at"],
        S.SENT: row["sent_at"],
    }.get(status) or row["updated_at"]
    return {
        "status": status,
        "label": Message.Status(status).label,
        "at": at,
        "error_code": row["error_code"],
        "fee": row["fee"],
    }


def message_reached_by(*, campaign: Campaign) -> dict[int, int]:
    """{contact id: the step that reached them (delivered or read)}; the lowest step wins (a
    late receipt of step 0 after step 1 was delivered too: both are shown in the export)."""
    out: dict[int, int] = {}
    rows = (
        Message.objects.filter(campaign_id=campaign.pk, status__in=_REACHED)
        .order_by("contact_id", "step")
        .values_list("contact_id", "step")
    )
    for contact_id, step in rows.iterator(chunk_size=5000):
        out.setdefault(contact_id, step)
    return out


def _share(n: int, total: int) -> Decimal:
    return Decimal(n) / Decimal(total) if total else Decimal(0)


def _pct(share: Decimal) -> str:
    return f"{(share * 100).quantize(Decimal('0.1'))}%".replace(".0%", "%")
