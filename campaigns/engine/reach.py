"""Reach: the recipients a campaign's channel cannot deliver to, counted and excluded before
anything is sent.

What a channel reaches is the provider's declaration (providers/reach.py: ZNS and Zalo reach
Vietnam, Metfone's SMS Cambodia, Viber and WhatsApp any country...), with the account's
settings["reach"] override. A recipient outside it is never sent and never charged:

- the pre-flight and the wizard count them per country (`campaign_unreachable`, set-based: one
  aggregate over the audience);
- audience validation (campaigns.engine.validation) checks each row with the same prefixes, so
  its summary and report agree with the count;
- materialization builds their messages as skipped, error code `unreachable`, with the reason
  (`messages_skip_unreachable`), the way recipients failing the template's rules are excluded;
- a campaign set to block (Campaign.invalid_recipients) is refused while any is in the audience
  (engine.lifecycle).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Q, QuerySet

from campaigns.engine.audience import campaign_audience
from campaigns.models import Campaign, Message
from providers.reach import Reach, country_name, unreachable_reason
from providers.shared.phones import CALLING_CODES, phone_country

# Message.error_code of a recipient the channel cannot reach (providers.errors explains it).
UNREACHABLE = "unreachable"
S = Message.Status


def campaign_reach(campaign: Campaign) -> Reach:
    """Who the campaign's channel reaches: its provider's declaration for the channel kind, with
    the account's settings["reach"] override."""
    channel = campaign.channel
    return channel.account.provider_class.reach_for(channel.kind, channel.account.settings)


def outside(reach: Reach, field_name: str = "phone") -> Q:
    """The rows whose phone the reach excludes: the SQL twin of `not reach.reaches(phone)`
    (the same calling-code prefixes). Only for a limited reach."""
    within = Q()
    for prefix in reach.prefixes or ():
        within |= Q(**{f"{field_name}__startswith": prefix})
    return ~within


@dataclass
class Unreachable:
    """Recipients the channel cannot reach, per country ("" for a phone of no known country)."""

    reach: Reach
    by_country: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.by_country.values())

    def rows(self) -> list[dict]:
        """[{"country", "name", "count"}], most first: one line each on the review step."""
        return [
            {"country": c, "name": country_name(c), "count": n}
            for c, n in sorted(self.by_country.items(), key=lambda kv: (-kv[1], kv[0]))
        ]

    def countries_text(self) -> str:
        """The countries in one phrase: "Vietnam" for one, "Cambodia: 3, Vietnam: 1" for more."""
        rows = self.rows()
        if len(rows) == 1:
            return rows[0]["name"]
        return ", ".join(f"{r['name']}: {r['count']}" for r in rows)


def count_by_country(qs: QuerySet, field_name: str = "phone") -> dict[str, int]:
    """{country: rows} of a queryset of phones: the served countries counted by the database in
    one aggregate (a prefix each); phones of any other country, rare, told by phone_country."""
    served = {
        region: Q(**{f"{field_name}__startswith": code}) for region, code in CALLING_CODES.items()
    }
    others = ~Q()
    for q in served.values():
        others &= ~q
    counts = qs.aggregate(
        **{f"n_{region}": Count("pk", filter=q) for region, q in served.items()},
        n_other=Count("pk", filter=others),
    )
    result = {region: counts[f"n_{region}"] for region in served if counts[f"n_{region}"]}
    if counts["n_other"]:
        for phone in qs.filter(others).values_list(field_name, flat=True).iterator():
            region = phone_country(phone)
            result[region] = result.get(region, 0) + 1
    return result


def campaign_unreachable(campaign: Campaign) -> Unreachable:
    """The campaign's recipients (opt-outs already left out) its channel cannot reach."""
    reach = campaign_reach(campaign)
    if not reach.limited:
        return Unreachable(reach)
    return Unreachable(reach, count_by_country(campaign_audience(campaign).filter(outside(reach))))


def messages_skip_unreachable(*, campaign: Campaign, now, step: int | None = None) -> int:
    """Pending messages whose phone the channel cannot reach become skipped, error code
    `unreachable`, with the country in the reason; no driver ever claims them. Set-based: one
    UPDATE per served country; phones of other countries (rare) grouped in Python. Returns how
    many."""
    reach = campaign_reach(campaign)
    if not reach.limited:
        return 0
    pending = Message.objects.filter(campaign_id=campaign.pk, status=S.PENDING).filter(
        outside(reach)
    )
    if step is not None:  # a fallback step's rows, checked against that step's channel
        pending = pending.filter(step=step)
    fields = {"status": S.SKIPPED, "error_code": UNREACHABLE, "updated_at": now}
    skipped = 0
    for region, code in CALLING_CODES.items():
        if reach.reaches(code):
            continue
        skipped += pending.filter(phone__startswith=code).update(
            error_message=unreachable_reason(reach, region)[:500], **fields
        )
    by_country: dict[str, list[int]] = {}
    for pk, phone in pending.values_list("pk", "phone").iterator():
        by_country.setdefault(phone_country(phone), []).append(pk)
    for region, pks in by_country.items():
        for i in range(0, len(pks), 5000):
            skipped += Message.objects.filter(pk__in=pks[i : i + 5000], status=S.PENDING).update(
                error_message=unreachable_reason(reach, region)[:500], **fields
            )
    return skipped
