"""The template's rules over a big audience, judged once per distinct value (PostgreSQL).

Materialization skips the recipients whose message would break the template's parameter rules
(materialize._skip_invalid). Its row path reads every recipient (phone, name and the whole
attributes document) into Python and checks it: at 10,000,000 recipients that pass alone ran
for over nine minutes (docs/BENCHMARKS.md, issue 22). But a parameter's verdict depends on its
raw value alone (RecipientChecker memoizes on it), and most raw values are either shared by
many recipients (a name, a city) or plainly fine (printable ASCII within the length bounds).
So, per parameter:

1. PostgreSQL sends Python the parameter's distinct raw values, except those plainly fine;
2. Python judges each with the checker's own functions (the same finisher and validator as the
   row path, so the same verdict and the same message);
3. one UPDATE ... FROM marks the pending messages of the recipients holding a failing value,
   the reasons joined in the row path's words and order.

Used when every parameter reads a contact field (name, phone), one attribute, or a constant.
Anything else (expression and column sources, an email campaign sending to each contact's own
address, SQLite) keeps the row path: skip_invalid_by_value returns None and the caller goes on.
tests/engine/test_invalid_by_value.py builds the same audience both ways and requires the same
rows with the same messages.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass

from django.db import connection
from django.db.models import BooleanField, TextField
from django.db.models.expressions import RawSQL
from django.utils import timezone

from campaigns.engine.audience import campaign_audience
from campaigns.engine.validation import campaign_needs_contact_email, campaign_params
from campaigns.models import Campaign, Contact, Message
from templates_app.models import TemplateParam
from templates_app.rendering import MappingError, compile_spec_parts
from templates_app.validation import RecipientChecker, compile_rule, rule_for

S = Message.Status

# Above this many distinct failing values the row path is the better tool (the arrays of the
# UPDATE would be larger than the rows it marks).
MAX_FAILING_VALUES = 200_000

# Printable ASCII, neither starting nor ending with a space: str.strip() leaves it whole, it is
# its own NFC form and len() counts what char_length() counts. Bracket ranges in PostgreSQL's
# regular expressions are by code point, whatever the collation.
_PLAIN = "^[!-~]([ -~]*[!-~])?$"


@dataclass
class _Param:
    name: str
    source: str  # "name" | "phone" | "attribute" | "constant"
    key: str  # the attribute's key, or the constant's text
    plain_ok: tuple[int, int | None] | None  # (min, max) lengths a plain value passes within


@dataclass
class InvalidPlan:
    params: list[_Param]
    failing: list  # per parameter: {reason: [raw texts]}, a constant's reason, or None

    @property
    def fails(self) -> bool:
        return any(self.failing)


def invalid_plan(campaign: Campaign) -> InvalidPlan | None:
    """Each parameter's failing values among the campaign's audience, or None when this campaign
    needs the row path."""
    if connection.vendor != "postgresql" or campaign.template_id is None:
        return None
    if campaign_needs_contact_email(campaign):
        return None
    params = campaign_params(campaign)
    checker = RecipientChecker(campaign.param_mapping, params)
    plan = _plan(campaign, params)
    if plan is None:
        return None
    audience = campaign_audience(campaign).order_by()
    failing: list[dict[str, list[str]] | str | None] = []
    values = 0
    for param, item in zip(plan, checker.items, strict=True):
        if param.source == "constant":
            _pname, raw_get, finish, validate, _memo = item
            problem = validate(finish(raw_get("", "", {})))
            failing.append(problem.message if problem else None)
            continue
        by_reason = _failing_values(audience, param, item)
        values += sum(len(v) for v in by_reason.values())
        if values > MAX_FAILING_VALUES:
            return None
        failing.append(by_reason or None)
    return InvalidPlan(plan, failing)


def skip_invalid_by_value(campaign: Campaign) -> int | None:
    """Mark skipped ("invalid_params", which parameters and why) every pending step-0 message
    whose recipient fails the template's rules; returns how many, or None when this campaign
    needs the row path."""
    plan = invalid_plan(campaign)
    if plan is None:
        return None
    if not plan.fails:
        return 0
    return _mark(campaign, campaign_audience(campaign).order_by(), plan)


def invalid_why_sql(plan: InvalidPlan) -> tuple[str, list]:
    """An expression over the contacts table: which parameters fail and why, "; "-joined in the
    row path's words and order (at most 500 characters); '' for a recipient who passes."""
    parts, params = [], []
    for param, fail in zip(plan.params, plan.failing, strict=True):
        if not fail:
            continue
        label = f"“{param.name}”: "
        if isinstance(fail, str):  # a constant that fails: everyone
            parts.append("%s")
            params.append(label + fail)
            continue
        raw, raw_params = _raw_sql(param)
        whens = []
        for reason, texts in fail.items():
            whens.append(f"WHEN {raw} = ANY(%s) THEN %s")
            params += [*raw_params, texts, label + reason]
        parts.append(f"CASE {' '.join(whens)} END")
    return f"LEFT(concat_ws('; ', {', '.join(parts)}), 500)", params


def _plan(campaign: Campaign, params: list) -> list[_Param] | None:
    mapping = campaign.param_mapping if isinstance(campaign.param_mapping, dict) else {}
    plan = []
    for p in params:
        spec = mapping.get(p.name) or {}
        try:
            compile_spec_parts(spec)
        except MappingError:  # the checker renders it empty: a constant ""
            plan.append(_Param(p.name, "constant", "", None))
            continue
        source = spec.get("source", "constant") or "constant"
        value = "" if spec.get("value") is None else str(spec.get("value", ""))
        if source == "field" and value in ("name", "phone"):
            plan.append(_Param(p.name, value, "", None))
        elif source == "attribute" and value:
            plan.append(_Param(p.name, "attribute", value, None))
        elif source == "constant":
            plan.append(_Param(p.name, "constant", value, None))
        else:
            return None
        rule = rule_for(p)
        if rule.param_type == TemplateParam.Type.TEXT and not str(spec.get("format") or ""):
            # A text without a formatter: only emptiness and length can fail it.
            plan[-1].plain_ok = (max(rule.min_length, 1), rule.max_length)
    return plan


def _table() -> str:
    return connection.ops.quote_name(Contact._meta.db_table)


def _raw_sql(param: _Param) -> tuple[str, list]:
    """The parameter's raw value as text: the field, or the attribute's JSON (JSON null for a
    missing key, as the row path's dict.get gives None for both)."""
    t = _table()
    if param.source == "attribute":
        return f"COALESCE(({t}.\"attributes\" -> %s)::text, 'null')", [param.key]
    return f'{t}."{param.source}"', []


def _plain_sql(param: _Param) -> tuple[str, list]:
    """True where the raw value plainly passes (never true where it could fail)."""
    t = _table()
    low, high = param.plain_ok
    if param.source == "attribute":
        return _plain_value_sql(f'{t}."attributes"', param.key, low, high)
    return _plain_value_sql(f'{t}."{param.source}"', None, low, high)


def _plain_value_sql(column: str, key: str | None, low: int, high: int | None):
    """(sql, params): true where `column` (a text column, or with `key` a JSON string in that
    jsonb column) is printable ASCII of `low` to `high` characters, which a text parameter's
    rule passes whatever it holds; false where it could fail (a JSON number, null, list, a
    missing key)."""
    if key is not None:
        value, vparams = f"({column} ->> %s)", [key]
        head, hparams = f"jsonb_typeof({column} -> %s) = 'string' AND ", [key]
    else:
        value, vparams, head, hparams = column, [], "", []
    sql = f"{head}{value} ~ %s AND char_length({value}) >= %s"
    sql_params = [*hparams, *vparams, _PLAIN, *vparams, low]
    if high:
        sql += f" AND char_length({value}) <= %s"
        sql_params += [*vparams, high]
    return f"COALESCE(({sql}), false)", sql_params


def _python_raw(param: _Param, text: str):
    """What the row path's getter reads, from the text PostgreSQL sent (psycopg decodes a
    jsonb column with json.loads of this same text)."""
    if param.source == "name":
        return "", text, {}
    if param.source == "phone":
        return text, "", {}
    return "", "", {param.key: json.loads(text)}


def _failing_values(audience, param: _Param, item) -> dict[str, list[str]]:
    """{reason: [raw texts]} of the parameter's failing distinct values among the audience."""
    _pname, raw_get, finish, validate, _memo = item
    sql, sql_params = _raw_sql(param)
    qs = audience.annotate(_raw=RawSQL(sql, sql_params, output_field=TextField()))
    if param.plain_ok is not None:
        plain, plain_params = _plain_sql(param)
        qs = qs.alias(_plain=RawSQL(plain, plain_params, output_field=BooleanField())).filter(
            _plain=False
        )
    by_reason: dict[str, list[str]] = defaultdict(list)
    for text in qs.values_list("_raw", flat=True).distinct().iterator(chunk_size=5000):
        phone, name, attrs = _python_raw(param, text)
        problem = validate(finish(raw_get(phone, name, attrs)))
        if problem is not None:
            by_reason[problem.message].append(text)
    return dict(by_reason)


def _mark(campaign: Campaign, audience, plan: InvalidPlan) -> int:
    """One UPDATE: the pending messages of the recipients holding a failing value."""
    why, why_params = invalid_why_sql(plan)
    matches, match_params = [], []
    for param, fail in zip(plan.params, plan.failing, strict=True):
        if not fail:
            continue
        if isinstance(fail, str):
            matches.append("true")
            continue
        raw, raw_params = _raw_sql(param)
        matches.append(f"{raw} = ANY(%s)")
        match_params += [*raw_params, [t for texts in fail.values() for t in texts]]
    select = (
        audience.annotate(_why=RawSQL(why, why_params, output_field=TextField()))
        .alias(_bad=RawSQL(" OR ".join(matches), match_params, output_field=BooleanField()))
        .filter(_bad=True)
        .values_list("pk", "_why")
    )
    sub, sub_params = select.query.sql_with_params()
    table = connection.ops.quote_name(Message._meta.db_table)
    with connection.cursor() as cur:
        cur.execute(
            f"UPDATE {table} AS m SET status = %s, error_code = 'invalid_params', "
            f"error_message = x.why, updated_at = %s FROM ({sub}) AS x(cid, why) "
            "WHERE m.campaign_id = %s AND m.step = 0 AND m.status = %s AND m.contact_id = x.cid",
            [S.SKIPPED, timezone.now(), *sub_params, campaign.pk, S.PENDING],
        )
        return cur.rowcount


# ---- built messages (fallback steps) ------------------------------------------------------------


def messages_holding_failing_values(pending, params: list):
    """The messages of `pending` (a Message queryset) whose template data holds at least one
    value a parameter's rule fails: on PostgreSQL found per distinct value, as above, so that
    the caller's row check reads those rows only instead of every one (a fallback step built for
    a million failures of step 0 read them all into Python, under the campaign's row lock).
    The caller still checks each returned row with validate_data: this only leaves out rows
    that cannot fail. Elsewhere, or past MAX_FAILING_VALUES, `pending` itself."""
    if connection.vendor != "postgresql":
        return pending
    table = connection.ops.quote_name(Message._meta.db_table)
    data = f'{table}."template_data"'
    conditions, condition_params = [], []
    failing_values = 0
    for param in params:
        rule = rule_for(param)
        validate = compile_rule(rule)
        # The value's JSON as text, NULL when the key is missing: validate_data reads a missing
        # key as "" and any other value as str() of what psycopg decodes from this same text.
        raw = RawSQL(f"({data} -> %s)::text", [param.name], output_field=TextField())
        values = pending.order_by().annotate(_raw=raw)
        if rule.param_type == TemplateParam.Type.TEXT:
            # Rendered values: no formatter left to apply, so only emptiness and length fail.
            low, high = max(rule.min_length, 1), rule.max_length
            plain, plain_params = _plain_value_sql(data, param.name, low, high)
            values = values.alias(
                _plain=RawSQL(plain, plain_params, output_field=BooleanField())
            ).filter(_plain=False)
        failing, missing = [], False
        for raw_text in values.values_list("_raw", flat=True).distinct().iterator(chunk_size=5000):
            value = "" if raw_text is None else str(json.loads(raw_text))
            if validate(value) is None:
                continue
            if raw_text is None:
                missing = True
            else:
                failing.append(raw_text)
        failing_values += len(failing)
        if failing_values > MAX_FAILING_VALUES:
            return pending
        if failing:
            conditions.append(f"({data} -> %s)::text = ANY(%s)")
            condition_params += [param.name, failing]
        if missing:
            conditions.append(f"NOT ({data} ? %s)")
            condition_params.append(param.name)
    if not conditions:
        return pending.none()
    return pending.alias(
        _fails=RawSQL(" OR ".join(conditions), condition_params, output_field=BooleanField())
    ).filter(_fails=True)
