"""Reads for the API overview page."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate

from campaigns.api import statuses
from campaigns.api.models import ApiMessage, CallbackDelivery
from campaigns.models import Contact
from providers.shared.phones import phone_candidates

SEARCH_LIMIT = 50


def _tz() -> ZoneInfo:
    # Days are the reader's days (Vietnam time), not UTC's.
    return ZoneInfo(settings.TIME_ZONE)


@dataclass
class DayRow:
    application_id: int
    application: str
    day: date
    counts: dict[str, int] = field(default_factory=dict)
    total: int = 0
    cost: Decimal = Decimal(0)

    @property
    def cells(self) -> list[int]:
        return [self.counts.get(s, 0) for s in statuses.PUBLIC_STATUSES]


def api_daily_counts(*, days: int, today: date, application_id: int | None = None) -> list[DayRow]:
    """Each application's messages per day (created that day, Vietnam time) over the last `days`
    days, newest first: how many are in each public status now, and their cost (fees known so
    far). A message is counted once, at its current status."""
    tz = _tz()
    start = datetime.combine(today - timedelta(days=days - 1), time.min, tzinfo=tz)
    qs = ApiMessage.objects.filter(created_at__gte=start)
    if application_id:
        qs = qs.filter(application_id=application_id)
    grouped = (
        qs.annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("application_id", "application__name", "day", "message__status")
        .annotate(n=Count("pk"), cost=Sum("message__fee"))
        .order_by()
    )
    rows: dict[tuple[int, date], DayRow] = {}
    for g in grouped:
        key = (g["application_id"], g["day"])
        row = rows.get(key) or rows.setdefault(
            key, DayRow(g["application_id"], g["application__name"], g["day"])
        )
        public = statuses.public_status(g["message__status"])
        row.counts[public] = row.counts.get(public, 0) + g["n"]
        row.total += g["n"]
        row.cost += g["cost"] or Decimal(0)
    return sorted(rows.values(), key=lambda r: (-r.day.toordinal(), r.application.lower()))


def api_messages_search(*, term: str, application_id: int | None = None) -> list[ApiMessage]:
    """API messages whose phone matches `term` in any format (a local 09... number is read as
    Vietnamese and Cambodian), or whose client reference or id is `term`; newest first."""
    term = term.strip()
    if not term:
        return []
    match = Q(client_reference=term)
    phones = phone_candidates(term)
    if phones:
        # The contact by its unique phone, then its messages by the contact index (as the
        # Messages search does): never a scan of every message's phone.
        contacts = list(Contact.objects.filter(phone__in=phones).values_list("pk", flat=True))
        if contacts:
            match |= Q(message__contact_id__in=contacts, message__phone__in=phones)
    if term.isdigit() and len(term) < 19:
        match |= Q(pk=int(term))
    qs = ApiMessage.objects.filter(match)
    if application_id:
        qs = qs.filter(application_id=application_id)
    return list(
        qs.select_related("application", "message", "campaign__channel").order_by("-created_at")[
            :SEARCH_LIMIT
        ]
    )


@dataclass
class CallbackHealth:
    application_id: int
    application: str
    waiting: int = 0
    retrying: int = 0
    given_up: int = 0
    delivered: int = 0


def api_callbacks_health(
    *, days: int, today: date, application_id: int | None = None
) -> list[CallbackHealth]:
    """Per application, the status callbacks of the period by state: what a person may have to
    act on (retrying: the client is failing now; given up: it never got them)."""
    start = datetime.combine(today - timedelta(days=days - 1), time.min, tzinfo=_tz())
    qs = CallbackDelivery.objects.filter(created_at__gte=start)
    if application_id:
        qs = qs.filter(application_id=application_id)
    open_ = Q(delivered_at__isnull=True, given_up_at__isnull=True)
    rows = (
        qs.values("application_id", "application__name")
        .annotate(
            waiting=Count("pk", filter=open_ & Q(attempts=0)),
            retrying=Count("pk", filter=open_ & Q(attempts__gt=0)),
            given_up=Count("pk", filter=Q(given_up_at__isnull=False)),
            delivered=Count("pk", filter=Q(delivered_at__isnull=False)),
        )
        .order_by("application__name")
    )
    return [
        CallbackHealth(
            r["application_id"],
            r["application__name"],
            r["waiting"],
            r["retrying"],
            r["given_up"],
            r["delivered"],
        )
        for r in rows
    ]
