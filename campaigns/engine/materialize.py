"""Materialization: one Message per recipient, its template data frozen when the campaign starts.

Set-based (one INSERT ... SELECT) when every parameter maps to a plain field, attribute or
constant; otherwise rendered in Python, in chunks, with the same rules (templates_app.rendering).
Idempotent: re-running adds nothing that exists (unique (campaign, contact)).

Recipients whose message breaks the template's parameter rules (campaigns.engine.validation), and
those the channel cannot reach (campaigns.engine.reach), are built too, as skipped messages with
the reason, when the campaign excludes them (Campaign.invalid_recipients); a campaign that blocks
is refused before (engine.lifecycle).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    DateTimeField,
    F,
    IntegerField,
    QuerySet,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, Concat, JSONObject, Trim, Upper
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.bulk import rows_bulk_set
from campaigns.engine.audience import audience_consent_plan, campaign_audience
from campaigns.engine.invalid_by_value import (
    InvalidPlan,
    invalid_plan,
    invalid_why_sql,
    skip_invalid_by_value,
)
from campaigns.engine.keys import idempotency_key
from campaigns.engine.reach import (
    UNREACHABLE,
    campaign_reach,
    messages_skip_unreachable,
    outside,
)
from campaigns.engine.validation import (
    audience_failure_rows,
    audience_rows,
    campaign_needs_contact_email,
    campaign_params,
)
from campaigns.models import Campaign, Contact, ContactListMembership, Message, OptOut
from providers.reach import Reach, unreachable_reason
from providers.shared.phones import CALLING_CODES, phone_country
from templates_app.models import TemplateParam
from templates_app.rendering import ContactData, render_params
from templates_app.validation import compile_rule, rule_for

S = Message.Status
T = TemplateParam.Type

# Formats the database can apply itself; any other format renders in Python.
_SQL_FORMATS = {"", None, "upper"}
INVALID = "invalid_params"  # error_code of a recipient skipped for the template's rules


def campaign_materialize(*, campaign_id: int, chunk: int = 5000) -> int:
    """One Message per recipient, template data frozen now; returns the campaign's messages and
    records how many targeted contacts were left out (Campaign.excluded)."""
    campaign = Campaign.objects.select_related("channel", "template").get(pk=campaign_id)
    audience = campaign_audience(campaign)
    with transaction.atomic():
        first_build = not Message.objects.filter(campaign_id=campaign_id).exists()
        _prepare_bulk_read()
        audience_consent_plan(campaign)
        # A first set-based build marks the unreachable as it inserts (one pass, see _marks); a
        # re-run and the Python path mark them with a second pass, as before.
        marks = _marks(campaign) if first_build else None
        # On PostgreSQL it marks who fails the template's rules the same way, from each
        # parameter's failing values judged beforehand (invalid_by_value): no UPDATE after.
        invalid = None
        if first_build and _sql_mapping(campaign) and campaign_rules_can_fail(campaign):
            invalid = invalid_plan(campaign)
        inserted = _materialize_sql(
            campaign,
            audience,
            first_build=first_build,
            marks=marks,
            invalid=invalid if invalid is not None and invalid.fails else None,
        )
        if inserted is None:
            _materialize_python(campaign, audience, chunk)
        # Who the channel cannot reach first (their reason is the country, whatever their data
        # says), then who fails the template's rules among the rest.
        if inserted is not None and marks is not None:
            skipped = _marks_finish(campaign, marks)
        else:
            skipped = messages_skip_unreachable(campaign=campaign, now=timezone.now(), step=0)
        if inserted is not None and invalid is not None:
            skipped += (
                Message.objects.filter(
                    campaign_id=campaign_id, step=0, status=S.SKIPPED, error_code=INVALID
                ).count()
                if invalid.fails
                else 0
            )
        else:
            skipped += _skip_invalid(campaign, chunk)
        # A first set-based build inserted every row it reports (no conflict clause); a re-run
        # or the Python path counts what is there (a million rows: a second more).
        if first_build and inserted is not None:
            total = inserted
        else:
            total = Message.objects.filter(campaign_id=campaign_id, step=0).count()
        # Without the consent rule: the contacts not opted out (the rule's exclusions are the
        # difference), counted only when the rule is on.
        not_opted = (
            campaign_audience(campaign, include_unconsented=True).count()
            if campaign.requires_advertising_consent
            else total
        )
        # Nobody opted out of this channel: nobody was left out, no second pass over the lists.
        kinds = [campaign.channel.kind, OptOut.ALL]
        if OptOut.objects.filter(channel_kind__in=kinds).exists():
            everyone = campaign_audience(campaign, include_opted_out=True).count()
        else:
            everyone = not_opted
    excluded = {"opted_out": max(0, everyone - not_opted)}
    if campaign.requires_advertising_consent:
        excluded["no_consent"] = max(0, not_opted - total)
    Campaign.objects.filter(pk=campaign_id).update(
        total_count=total, excluded=excluded, skipped_count=F("skipped_count") + skipped
    )
    return total


def campaign_rules_can_fail(campaign: Campaign) -> bool:
    """Whether some recipient's message could break the template's parameter rules: False when
    no parameter has a rule that can fail (none required, no length, no format) except constants
    that pass (the same text for everyone, checked once here), and no contact's own email
    address is needed. Then nobody needs to be validated. A free text (no template) has no
    parameter step in the wizard: only its email address can fail."""
    if campaign_needs_contact_email(campaign):
        return True
    if campaign.template_id is None:
        return False
    mapping = campaign.param_mapping or {}
    for param in campaign_params(campaign):
        rule = rule_for(param)
        spec = mapping.get(param.name) or {}
        if spec.get("source") == "constant":
            value = render_params({param.name: spec}, ContactData("", "", {})).get(param.name, "")
            if compile_rule(rule)(value) is None:
                continue
            return True
        if rule.required or rule.max_length or rule.min_length or rule.param_type != T.TEXT:
            return True
    return False


def campaign_failing_recipients(campaign: Campaign, chunk: int = 5000) -> Iterator[tuple]:
    """(contact id, why) for every recipient whose message would break the template's rules,
    in id order, streamed: which parameters and why, "; "-joined (campaigns.engine.validation,
    the rows of the downloadable report). Nothing when no rule can fail."""
    if not campaign_rules_can_fail(campaign):
        return
    if campaign.template_id is None:  # free text: only the contact's own email address
        why = "“email”: " + _("no email address (the contact has no email attribute)")
        for pk, _phone, _name, attributes in audience_rows(campaign, chunk):
            if not Contact.email_of(attributes):
                yield pk, why
        return
    last, text = None, ""
    for contact_id, _phone, _name, param, _value, reason in audience_failure_rows(
        campaign=campaign, chunk=chunk
    ):
        if contact_id != last:
            if last is not None:
                yield last, text
            last, text = contact_id, f"“{param}”: {reason}"
        else:  # another failing parameter of the same recipient
            text = f"{text}; “{param}”: {reason}"
    if last is not None:
        yield last, text


def campaign_failing_count(campaign: Campaign) -> tuple[int, int]:
    """(recipients whose message would break the template's rules, recipients)."""
    failing = sum(1 for _row in campaign_failing_recipients(campaign))
    return failing, campaign_audience(campaign).count()


def _skip_invalid(campaign: Campaign, chunk: int) -> int:
    """Excluded recipients (Campaign.invalid_recipients): every pending message whose recipient
    fails the template's rules becomes skipped, error_code "invalid_params", with which
    parameter and why; no driver ever claims it. Returns how many. A campaign set to block was
    refused before when any failed (engine.lifecycle); one that starts failing since (the
    audience changed in between) is skipped too: the provider never receives a value we know
    it will refuse.

    Runs only when some rule can fail (campaign_rules_can_fail). On PostgreSQL each parameter's
    distinct values are judged once and one UPDATE marks the failing rows (invalid_by_value);
    otherwise every recipient is rendered and checked in Python, in chunks (a million rows take
    far longer than the set-based build)."""
    if not campaign_rules_can_fail(campaign):
        return 0
    by_value = skip_invalid_by_value(campaign)
    if by_value is not None:
        return by_value
    skipped, batch = 0, {}
    now = timezone.now()
    for contact_id, why in campaign_failing_recipients(campaign, chunk):
        batch[contact_id] = why[:500]
        if len(batch) >= chunk:
            skipped += _skip_rows(campaign.pk, batch, now)
            batch = {}
    if batch:
        skipped += _skip_rows(campaign.pk, batch, now)
    return skipped


def _skip_rows(campaign_id: int, why_by_contact: dict[int, str], now) -> int:
    pending = Message.objects.filter(
        campaign_id=campaign_id, contact_id__in=why_by_contact, status=S.PENDING, step=0
    ).values_list("pk", "contact_id")
    rows = [
        {
            "pk": pk,
            "status": S.SKIPPED,
            "error_code": INVALID,
            "error_message": why_by_contact[contact_id],
            "updated_at": now,
        }
        for pk, contact_id in pending
    ]
    table = connection.ops.quote_name(Message._meta.db_table)
    return rows_bulk_set(
        Message,
        rows,
        ["status", "error_code", "error_message", "updated_at"],
        guard=f" AND {table}.status = %s",
        guard_params=[S.PENDING],
    )


def _sql_expression(spec: dict):
    """The SQL twin of templates_app.rendering.resolve for simple specs, or None."""
    source, value, fmt = spec.get("source"), spec.get("value", ""), spec.get("format", "")
    if fmt not in _SQL_FORMATS:
        return None
    if source == "field" and value in ("name", "phone"):
        expr = Trim(F(value))
    elif source == "attribute" and isinstance(value, str) and value:
        expr = Trim(Coalesce(Cast(KeyTextTransform(value, "attributes"), CharField()), Value("")))
    elif source == "constant":
        expr = Value(str(value if value is not None else "").strip())
    else:
        return None
    return Upper(expr) if fmt == "upper" else expr


def messages_build(*, campaign: Campaign, audience: QuerySet, step: int) -> int:
    """A fallback step's messages (campaigns.engine.fallback): one per contact of `audience`,
    built exactly as step 0's were (the same set-based statement or Python rules) from
    `campaign`, a view of the campaign as that step (its mapping), with the step's keys; ON
    CONFLICT DO NOTHING, so a step is never built twice for a contact. Returns rows inserted."""
    inserted = _materialize_sql(campaign, audience, step=step)
    if inserted is None:
        inserted = _materialize_python(campaign, audience, 5000, step=step)
    return inserted


def _sql_mapping(campaign: Campaign) -> bool:
    """Whether every parameter maps to plain SQL (the set-based build)."""
    mapping = campaign.param_mapping or {}
    return all(_sql_expression(spec or {}) is not None for spec in mapping.values())


def _materialize_sql(
    campaign: Campaign,
    audience: QuerySet,
    *,
    first_build: bool = False,
    step: int = 0,
    marks: Marks | None = None,
    invalid: InvalidPlan | None = None,
):
    """INSERT ... SELECT in one statement when every parameter maps to plain SQL; returns the
    rows inserted, or None when some parameter needs Python. With `marks`, the recipients the
    channel cannot reach are inserted already skipped (_marks); with `invalid`, those failing
    the template's rules too (invalid_by_value)."""
    exprs = {}
    for name, spec in (campaign.param_mapping or {}).items():
        expr = _sql_expression(spec or {})
        if expr is None:
            return None
        exprs[name] = expr
    now = timezone.now()
    prefix = idempotency_key(campaign, 0)[:-1]  # "loa{id}t{stamp}c"
    blank, zero = Value(""), Value(0, output_field=IntegerField())
    stamp = Value(now, output_field=DateTimeField())
    row = {
        "campaign_id": Value(campaign.pk, output_field=IntegerField()),
        "contact_id": F("pk"),
        "phone": F("phone"),
        "idempotency_key": Concat(
            Value(prefix),
            Cast("pk", CharField()),
            Value(f"s{step}" if step else ""),
            output_field=CharField(),
        ),
        "template_data": JSONObject(**exprs) if exprs else Value("{}"),
        "status": Value(S.PENDING),
        "provider_message_id": blank,
        "error_class": blank,
        "error_code": blank,
        "error_message": blank,
        "attempts": zero,
        "created_at": stamp,
        "updated_at": stamp,
    }
    if step:  # step 0 leaves the column to its database default
        row["step"] = Value(step, output_field=IntegerField())
    aliases = {f"_{column}": expr for column, expr in row.items()}
    if marks is not None:
        aliases.update(marks.skip)
    if invalid is not None:
        why, why_params = invalid_why_sql(invalid)
        aliases["_invalid_why"] = RawSQL(why, why_params, output_field=CharField())
    select = audience.order_by().annotate(**aliases).values_list(*aliases)
    sql, params = select.query.sql_with_params()
    if marks is not None or invalid is not None:
        sql = _marks_sql(sql, list(row), reach=marks is not None, invalid=invalid is not None)
    # The first build of a campaign inserts plainly (ON CONFLICT's speculative insertion costs a
    # third more per row); a re-run keeps only what is missing. "WHERE true" keeps SQLite's parser
    # from reading ON CONFLICT as part of a join.
    if not first_build:
        where = "" if " WHERE " in sql else " WHERE true"
        sql = f"{sql}{where} ON CONFLICT DO NOTHING"
    with connection.cursor() as cur:
        cur.execute(f"INSERT INTO {Message._meta.db_table} ({', '.join(row)}) {sql}", params)
        return cur.rowcount


# --- One-pass reach marking (issue 22) ---------------------------------------------------------
# The first set-based build used to insert every recipient pending, then find and UPDATE the ones
# the channel cannot reach (reach.messages_skip_unreachable: one UPDATE per unserved country over
# the campaign's pending rows, and a scan of them for phones of no served country): a second pass
# over the rows just written, each skipped row written twice. Here the rule is three CASE columns
# of the INSERT ... SELECT (the same calling-code prefixes, the same reasons), so each message is
# written once, already marked. Phones of no served country are inserted skipped with an empty
# reason, which _marks_finish fills through the (campaign, status, id) index (their country is
# told by phone_country, in Python, as before).
# The template's rules were kept in a pass of their own (_skip_invalid: a read of the audience,
# checked in Python, only the failing rows written). Checking them in the same statement was
# built and measured: exact (Python's strip and NFC lengths in SQL) but no cheaper, btrim() and
# the NFC check per value cost as much as the memoized Python check (docs/BENCHMARKS.md,
# 2026-12-04). What the build does now on PostgreSQL is cheaper than both: each parameter's
# distinct values are judged in Python beforehand (invalid_by_value), and the INSERT's SELECT
# only compares a recipient's raw value with the failing ones (_invalid_why).
# tests/engine/test_materialize_one_pass.py proves the rows marked are exactly those the
# two-pass build marks.


@dataclass
class Marks:
    reach: Reach  # the channel's (limited) reach
    skip: dict  # alias -> expression of the audience row: _out, _reach_why


def _marks(campaign: Campaign) -> Marks | None:
    """The expressions marking the unreachable in the build, or None when the channel reaches
    anyone (or no country at all: then the two-pass rule applies unchanged)."""
    reach = campaign_reach(campaign)
    if not reach.limited or not reach.prefixes:
        return None
    reasons = [
        When(phone__startswith=code, then=Value(unreachable_reason(reach, region)[:500]))
        for region, code in CALLING_CODES.items()
        if not reach.reaches(code)
    ]
    skip = {
        "_out": Case(
            When(outside(reach), then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        ),
        "_reach_why": Case(*reasons, default=Value("")) if reasons else Value(""),
    }
    return Marks(reach, skip)


def _marks_finish(campaign: Campaign, marks: Marks) -> int:
    """After a marked build: the reason of phones of no served country, told per country in
    Python (as messages_skip_unreachable does); returns how many the build skipped as
    unreachable. Both read the campaign's skipped rows only (the claim index)."""
    skipped = Message.objects.filter(
        campaign_id=campaign.pk, step=0, status=S.SKIPPED, error_code=UNREACHABLE
    )
    by_country: dict[str, list[int]] = {}
    for pk, phone in skipped.filter(error_message="").values_list("pk", "phone").iterator():
        by_country.setdefault(phone_country(phone), []).append(pk)
    for region, pks in by_country.items():
        reason = unreachable_reason(marks.reach, region)[:500]
        for i in range(0, len(pks), 5000):
            Message.objects.filter(pk__in=pks[i : i + 5000]).update(error_message=reason)
    return skipped.count()


def _marks_sql(sql: str, columns: list[str], *, reach: bool = True, invalid: bool = False) -> str:
    """The build's SELECT wrapped so each row's mark is computed once (OFFSET 0 keeps
    PostgreSQL's planner from folding the inner query into the outer one, which would repeat
    it). The unreachable first: their reason is the country, whatever their data says."""
    marks = []  # (condition, error code, message column)
    if reach:
        marks.append(('"_out"', f"'{UNREACHABLE}'", '"_reach_why"'))
    if invalid:
        marks.append(("\"_invalid_why\" <> ''", f"'{INVALID}'", '"_invalid_why"'))
    skipped = " ".join(f"WHEN {cond} THEN '{S.SKIPPED}'" for cond, _c, _w in marks)
    codes = " ".join(f"WHEN {cond} THEN {c}" for cond, c, _w in marks)
    whys = " ".join(f"WHEN {cond} THEN {w}" for cond, _c, w in marks)
    case = {
        "status": f"CASE {skipped} ELSE '{S.PENDING}' END",
        "error_code": f"CASE {codes} ELSE '' END",
        "error_message": f"CASE {whys} ELSE '' END",
    }
    select = ", ".join(case.get(c, f'"_{c}"') for c in columns)
    fence = " OFFSET 0" if connection.vendor == "postgresql" else ""  # (SQLite: no OFFSET alone)
    return f"SELECT {select} FROM ({sql}{fence}) AS marked"


# --- end of one-pass reach marking ---------------------------------------------------------------


def _prepare_bulk_read() -> None:
    """PostgreSQL: plan the audience query on fresh statistics, and give it memory.

    Right after a big import the planner still believes the contact and membership tables are
    small (autovacuum analyzes them a minute later), and chose a million index probes instead of
    one hash join: measured at 1,000,000 recipients, 47 s with stale statistics and the default
    4 MB work_mem (the de-duplication spilled to disk), 21 s after this. ANALYZE samples a few
    thousand pages, so it runs only when a tenth of a table changed since the last one."""
    if connection.vendor != "postgresql":
        return
    tables = [m._meta.db_table for m in (Contact, ContactListMembership)]
    with connection.cursor() as cur:
        cur.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(%s) "
            "AND (last_analyze IS NULL AND last_autoanalyze IS NULL "
            "OR n_mod_since_analyze > 0.1 * GREATEST(n_live_tup, 1000))",
            [tables],
        )
        for (table,) in cur.fetchall():
            cur.execute(f"ANALYZE {connection.ops.quote_name(table)}")
        mem = str(settings.LOA.get("MATERIALIZE_WORK_MEM") or "256MB")
        cur.execute("SELECT set_config('work_mem', %s, true)", [mem])


def _materialize_python(campaign: Campaign, audience: QuerySet, chunk: int, step: int = 0) -> int:
    mapping = campaign.param_mapping or {}
    qs = audience.order_by("pk").values_list("pk", "phone", "name", "attributes")
    batch: list[Message] = []
    before = Message.objects.filter(campaign_id=campaign.pk, step=step).count() if step else 0
    for pk, phone, name, attributes in qs.iterator(chunk_size=chunk):
        data = render_params(
            mapping, ContactData(phone=phone, name=name, attributes=attributes or {})
        )
        batch.append(
            Message(
                campaign_id=campaign.pk,
                contact_id=pk,
                phone=phone,
                template_data=data,
                idempotency_key=idempotency_key(campaign, pk, step),
                step=step,
            )
        )
        if len(batch) >= chunk:
            Message.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    if batch:
        Message.objects.bulk_create(batch, ignore_conflicts=True)
    if not step:
        return 0  # step 0's caller counts the campaign's rows itself
    return Message.objects.filter(campaign_id=campaign.pk, step=step).count() - before
