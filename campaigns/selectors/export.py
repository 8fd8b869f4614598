"""A campaign's results out to a spreadsheet, for the marketer who reads it: every recipient's
outcome, in message order, as a streamed CSV (the XLSX twin is export_xlsx.py, apart so openpyxl
loads only when it is used). Both write the same table (campaign_export_table): the same columns,
headers and statuses in the reader's language, the phone in local and international form, the
contact's name and attributes (an order code is one of them), what was sent, each step's time in
Vietnam time, the error code and its meaning, the fee."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import QuerySet
from django.utils import timezone, translation
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from campaigns.contacts.export import contacts_attribute_keys
from campaigns.engine.fallback import campaign_chain
from campaigns.engine.send import campaign_send_plan
from campaigns.models import Campaign, Contact, FallbackStep, Message
from campaigns.selectors.export_copy import copy_export_possible, export_copy_chunks
from providers.errors import explain
from providers.shared.phones import format_local
from providers.shared.text import csv_safe
from templates_app.content import render_content

# What each row reads from the database, in this order.
ROW_FIELDS = (
    "phone",
    "contact__name",
    "contact__attributes",
    "template_data",
    "status",
    "sent_at",
    "delivered_at",
    "read_at",
    "failed_at",
    "error_code",
    "fee",
    "provider_message_id",
)
# Kinds of cell, so each format can type them: text, a local time, a fee in VND, an attribute
# value (a number stays a number).
TEXT, TIME, MONEY, VALUE = "text", "time", "money", "value"
STEPS = ("sent_at", "delivered_at", "read_at", "failed_at")


@dataclass(frozen=True)
class ExportTable:
    """The export as both formats write it: a header, the kind of each column, and the rows
    (a generator over the database: nothing is held in memory). `copy` holds what the
    database-written CSV needs (export_copy) when it can write this one, else None."""

    header: list[str]
    kinds: list[str]
    rows: Iterator[list]
    copy: dict | None = None


def campaign_export_queryset(*, campaign: Campaign) -> QuerySet:
    """Every recipient's outcome, in message order: the rows of both exports (CSV and XLSX)."""
    return Message.objects.filter(campaign_id=campaign.pk).order_by("id").values_list(*ROW_FIELDS)


def _params_text(data, order: tuple[str, ...]) -> str:
    """The parameters sent, one "name: value" per parameter, in the template's order (PostgreSQL's
    jsonb keeps no key order), then any others by name."""
    if not isinstance(data, dict):
        return ""
    keys = [k for k in order if k in data] + sorted(k for k in data if k not in order)
    return "; ".join(f"{k}: {data[k]}" for k in keys)


def _attribute(value):
    """An attribute as a cell: numbers stay numbers, anything structured becomes JSON text."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return value
    return json.dumps(value, ensure_ascii=False)


def campaign_export_table(*, campaign: Campaign, limit: int | None = None) -> ExportTable:
    """The export's header and rows, in the language active now (the request's): it is captured
    here and re-entered while the rows stream, after the view has returned."""
    lang = translation.get_language()
    keys = contacts_attribute_keys(
        queryset=Contact.objects.filter(
            pk__in=Message.objects.filter(campaign_id=campaign.pk).values("contact_id")
        )
    )
    plan = campaign_send_plan(campaign)
    # Text channels (SMS, Viber, email, ...) send a body Loa renders; ZNS sends parameters only.
    has_text = bool(plan.body)
    # Headers reuse the model's translated field names where they fit.
    field = Message._meta.get_field
    header = [
        _("Phone"),
        _("Phone (international)"),
        _("Name"),
        *keys,
        _("Parameters"),
        *([_("Content")] if has_text else []),
        _("Status"),
        *(str(capfirst(field(step).verbose_name)) for step in STEPS),
        str(capfirst(field("error_code").verbose_name)),
        _("What it means"),
        _("Fee (VND)"),
        str(capfirst(field("provider_message_id").verbose_name)),
    ]
    kinds = [
        TEXT,
        TEXT,
        TEXT,
        *([VALUE] * len(keys)),
        TEXT,
        *([TEXT] if has_text else []),
        TEXT,
        *([TIME] * len(STEPS)),
        TEXT,
        TEXT,
        MONEY,
        TEXT,
    ]
    qs = campaign_export_queryset(campaign=campaign)
    # A fallback chain (campaigns.engine.fallback): one row per recipient (its first step), then
    # per fallback step its channel's status, time, error and fee, and which step reached them.
    chain = campaign_chain(campaign.pk, native=True)
    later: dict[tuple[int, int], tuple] = {}
    if chain:
        qs = qs.filter(step=0).values_list(*ROW_FIELDS, "contact_id")
        later = {
            (contact_id, step): rest
            for contact_id, step, *rest in Message.objects.filter(
                campaign_id=campaign.pk, step__gt=0
            )
            .values_list(
                "contact_id",
                "step",
                "status",
                "sent_at",
                "delivered_at",
                "read_at",
                "failed_at",
                "error_code",
                "fee",
            )
            .iterator(chunk_size=5000)
        }
        for step in chain:
            label = _("Fallback {n} ({channel})").format(n=step.position, channel=step.channel.name)
            if step.mode == FallbackStep.Mode.PROVIDER:
                label = _("Fallback {n} ({channel}, the provider's own fallback)").format(
                    n=step.position, channel=step.channel.name
                )
            header += [
                f"{label}: {_('status')}",
                f"{label}: {_('time')}",
                f"{label}: {_('error')}",
                f"{label}: {_('fee (VND)')}",
            ]
            kinds += [TEXT, TIME, TEXT, MONEY]
        header.append(_("Reached by"))
        kinds.append(TEXT)
    if limit is not None:
        qs = qs[:limit]

    def rows() -> Iterator[list]:
        statuses: dict[str, str] = {}
        meanings: dict[str, str] = {}
        # One zone object for every row: timezone.localtime looks it up again on each call.
        tz = timezone.get_current_timezone()
        with translation.override(lang):
            for record in qs.iterator(chunk_size=2000):
                contact_id = record[-1] if chain else None
                (phone, name, attributes, data, status, *steps, code, fee, pmid) = (
                    record[:-1] if chain else record
                )
                attrs = attributes if isinstance(attributes, dict) else {}
                if status not in statuses:
                    statuses[status] = str(Message.Status(status).label)
                if code and code not in meanings:
                    meanings[code] = explain(code)
                text = []
                if has_text:
                    # Rendered as the engine rendered it (campaigns.engine.send._outbound).
                    text = [
                        render_content(
                            channel_kind=plan.channel_kind,
                            body=plan.body,
                            data=data if isinstance(data, dict) else {},
                            subject=plan.subject,
                            strip_diacritics=plan.strip_diacritics,
                        ).text
                    ]
                extra = (
                    _chain_cells(chain, later, contact_id, status, statuses, meanings, tz)
                    if chain
                    else []
                )
                yield [
                    format_local(phone),
                    phone,
                    name,
                    *(_attribute(attrs.get(k)) for k in keys),
                    _params_text(data, plan.param_order),
                    *text,
                    statuses[status],
                    *(t.astimezone(tz).replace(tzinfo=None) if t else None for t in steps),
                    code,
                    meanings.get(code, "") if code else "",
                    fee,
                    pmid,
                    *extra,
                ]

    copy = None
    if limit is None and copy_export_possible(campaign=campaign, has_text=has_text, chain=chain):
        order = tuple(plan.param_order)
        copy = {
            "campaign": campaign,
            "keys": keys,
            "param_order": order,
            "lang": lang,
            "renderers": {
                "A": lambda v: csv_safe(_attribute(v)),
                "J": lambda v: csv_safe(_params_text(v, order)),
            },
        }
    return ExportTable(header=header, kinds=kinds, rows=rows(), copy=copy)


_REACHED = (Message.Status.DELIVERED, Message.Status.READ)


def _chain_cells(chain, later, contact_id, status, statuses, meanings, tz) -> list:
    """A recipient's fallback steps: status, time (the step's last), error and its meaning,
    fee; then which step reached them ("" for none)."""
    cells = []
    reached = _("First") if status in _REACHED else ""
    for step in chain:
        row = later.get((contact_id, step.position))
        if row is None:
            cells += ["", None, "", None]
            continue
        st, sent, delivered, read, failed, code, fee = row
        if st not in statuses:
            statuses[st] = str(Message.Status(st).label)
        if code and code not in meanings:
            meanings[code] = explain(code)
        last = read or delivered or failed or sent
        error = f"{code}: {meanings[code]}" if code and meanings.get(code) else code
        cells += [
            statuses[st],
            last.astimezone(tz).replace(tzinfo=None) if last else None,
            error,
            fee,
        ]
        if not reached and st in _REACHED:
            reached = _("Fallback {n} ({channel})").format(
                n=step.position, channel=step.channel.name
            )
    return [*cells, reached]


def vnd(fee: Decimal | None):
    """A fee as VND, which has no decimals in practice: a whole number when it is one."""
    if fee is None:
        return None
    return int(fee) if fee == fee.to_integral_value() else float(fee)


def _csv_text(value) -> str:
    return "" if value is None else csv_safe(value)


def _csv_time(value) -> str:
    # ISO order: every spreadsheet reads it as a date, whatever its locale.
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _csv_money(value) -> str:
    return "" if value is None else str(vnd(value))


# A CSV cell has no type: every kind becomes text, and text is formula-guarded.
_CSV = {TEXT: _csv_text, VALUE: _csv_text, TIME: _csv_time, MONEY: _csv_money}


def campaign_export_rows(
    *, campaign: Campaign, on_done: Callable[[int, bool], None] | None = None
) -> Iterator[str]:
    """CSV of every recipient's outcome, streamed; every text cell formula-injection safe
    (csv_safe: a CSV cell has no type, so "=..." would be read as a formula). `on_done(rows,
    complete)` is called when the stream ends (the audit trail's row count)."""
    table = campaign_export_table(campaign=campaign)
    return _csv_chunks(table, on_done)


def campaign_export_rows_python(*, campaign: Campaign) -> Iterator[str]:
    """The same CSV always written row by row in Python (what export_copy is compared with)."""
    table = campaign_export_table(campaign=campaign)
    return _csv_chunks(ExportTable(header=table.header, kinds=table.kinds, rows=table.rows))


def _csv_chunks(
    table: ExportTable, on_done: Callable[[int, bool], None] | None = None
) -> Iterator[str]:
    sent, complete = 0, False
    chunks = _csv_chunks_counted(table)
    try:
        for chunk, rows in chunks:
            sent = rows  # counted when handed over: a cut download counts what it got
            yield chunk
        complete = True
    finally:
        # A cut download: end the database read (export_copy's read transaction) before the
        # audit row is written, or that row would be written inside it and rolled back.
        chunks.close()
        if on_done is not None:
            on_done(sent, complete)


def _csv_chunks_counted(table: ExportTable) -> Iterator[tuple[str, int]]:
    n = 0
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([csv_safe(h) for h in table.header])
    yield "\ufeff" + buf.getvalue(), 0
    buf.seek(0)
    buf.truncate()
    if table.copy is not None:
        # PostgreSQL writes the rows (export_copy): same bytes, several times faster.
        yield from export_copy_chunks(**table.copy)
        return
    cells = [_CSV[k] for k in table.kinds]
    for n, row in enumerate(table.rows, 1):  # noqa: B007 - n is the count after the loop
        w.writerow([f(v) for f, v in zip(cells, row, strict=True)])
        if n % 500 == 0:  # chunks of a few dozen KB, not one per row
            yield buf.getvalue(), n
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue(), n
