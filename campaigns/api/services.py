"""Sending one message through the API: checks first (channel, template, phone, parameters, the
sending policy), then a one-recipient campaign of origin "api" with its one Message, keyed as the
engine keys every message, and its driver put on the queue when the transaction commits.

An API message is never a parallel path (DESIGN.md): the engine claims, sends, records, applies
status events and reconciles it exactly as it does a campaign's. The engine gives campaigns of
origin "api" a reserved share of the account's rate (LOA_API_RATE_SHARE), so an API message does
not wait behind a big campaign on the same account.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import IntegerField, Value
from django.utils import timezone
from django.utils.translation import gettext

from campaigns.api.cache import cached
from campaigns.api.errors import ApiError
from campaigns.api.intake import IntakeRow, intake_insert, intake_kick
from campaigns.api.models import ApiApplication, ApiIntake, ApiKey, IdempotencyRecord
from campaigns.contacts.optout import InvalidPhone, phone_opt_out
from campaigns.engine.policy import contacts_frequency_capped, promotion_allowed_at
from campaigns.engine.validation import campaign_params
from campaigns.models import Campaign, Contact, OptOut
from campaigns.privacy.models import ConsentSource
from campaigns.privacy.selectors import contact_has_advertising_consent
from campaigns.privacy.services import consent_record
from providers.models import Channel, ChannelKind
from providers.reach import unreachable_reason
from providers.shared.phones import normalize_phone, phone_country
from templates_app.models import Template
from templates_app.params import template_params
from templates_app.validation import compile_rules, validate_data


@dataclass
class SendRequest:
    """One message to send (the body of POST /api/v1/messages, already parsed)."""

    phone: str
    template_id: int | None = None
    channel_id: int | None = None
    params: dict = field(default_factory=dict)
    content: str = ""
    country: str = "VN"
    client_reference: str = ""


@dataclass
class Accepted:
    api_message_id: int
    message_id: int | None = None  # made later by the intake worker


# ---- channels a key may use ---------------------------------------------------------------------


def key_channel_ids(key: ApiKey) -> set[int] | None:
    """The channels this key may send on (None: any active channel): the key's own list, else its
    application's, else every channel."""
    # One query for both lists: the key's channels (1) and its application's (2).
    key_rows = ApiKey.channels.through.objects.filter(apikey_id=key.pk).annotate(
        src=Value(1, output_field=IntegerField())
    )
    app_rows = ApiApplication.channels.through.objects.filter(
        apiapplication_id=key.application_id
    ).annotate(src=Value(2, output_field=IntegerField()))
    rows = list(
        key_rows.values_list("channel_id", "src").union(
            app_rows.values_list("channel_id", "src"), all=True
        )
    )
    ids = {c for c, src in rows if src == 1} or {c for c, src in rows if src == 2}
    return ids or None


def _resolve(key: ApiKey, req: SendRequest) -> tuple[Channel, Template | None, tuple | None]:
    """The channel, the template and its parameters of a request (remembered a few seconds per
    process: campaigns.api.cache), then the content rule."""
    channel, template, params = cached(
        "route", (key.pk, req.template_id, req.channel_id), lambda: _route(key, req)
    )
    if template is None and (channel.kind == ChannelKind.ZALO_ZNS or not req.content.strip()):
        raise ApiError("template_required")
    return channel, template, params


def _route(key: ApiKey, req: SendRequest) -> tuple[Channel, Template | None, tuple | None]:
    allowed = key_channel_ids(key)
    template = None
    if req.template_id is not None:
        template = (
            Template.objects.filter(pk=req.template_id)
            .exclude(status=Template.Status.DELETED)
            .first()
        )
        if template is None:
            raise ApiError("template_not_found")
        if template.status != Template.Status.APPROVED:
            raise ApiError("template_not_approved", template=template.name)
    channel = None
    if req.channel_id is not None:
        channel = (
            Channel.objects.select_related("account", "official_account")
            .filter(pk=req.channel_id, is_active=True, account__is_active=True)
            .first()
        )
        if channel is None:
            raise ApiError("channel_not_found")
        if allowed is not None and channel.pk not in allowed:
            raise ApiError("channel_not_allowed", channel=channel.name)
        if template is not None and not _sends(channel, template):
            raise ApiError(
                "channel_template_mismatch", template=template.name, channel=channel.name
            )
    elif template is not None:
        # The template implies its channel: the account's active channel of the template's kind
        # (and OA for ZNS) that this key may use; the lowest id when several do.
        qs = Channel.objects.select_related("account", "official_account").filter(
            account_id=template.account_id,
            kind=template.channel_kind,
            is_active=True,
            account__is_active=True,
        )
        if template.official_account_id:
            qs = qs.filter(official_account_id=template.official_account_id)
        if allowed is not None:
            qs = qs.filter(pk__in=allowed)
        channel = qs.order_by("id").first()
        if channel is None:
            raise ApiError("no_channel_for_template", template=template.name)
    else:
        raise ApiError("template_required")
    if template is None:
        return channel, template, None
    # The template's params and their compiled rules, remembered with the route (compiling
    # them was a visible part of a request's CPU).
    params = template_params(template=template)
    return channel, template, (params, compile_rules(params))


def _sends(channel: Channel, template: Template) -> bool:
    if channel.account_id != template.account_id or channel.kind != template.channel_kind:
        return False
    return not (
        template.official_account_id and channel.official_account_id != template.official_account_id
    )


# ---- the checks of one message ------------------------------------------------------------------


def idempotency_key_check(key: str) -> None:
    if not key or len(key) > 255 or not key.isascii() or not key.isprintable():
        raise ApiError("invalid_idempotency_key")


def _phone(req: SendRequest, channel: Channel) -> str:
    result = normalize_phone(req.phone, mobile_only=True, country=req.country or "VN")
    if not result.ok:
        raise ApiError("invalid_phone", reason=result.error)
    reach = channel.account.provider_class.reach_for(channel.kind, channel.account.settings)
    if not reach.reaches(result.phone):
        raise ApiError("unreachable", reason=unreachable_reason(reach, phone_country(result.phone)))
    return result.phone


def _params(specs: tuple | None, req: SendRequest) -> dict[str, str]:
    """The template data, checked by the same rules the wizard checks a campaign's recipients
    with (campaigns.engine.validation's params, templates_app's rules): {} or a 422 naming each
    bad field. specs: the template's params (None: free content, its placeholders)."""
    data = {k: "" if v is None else str(v) for k, v in (req.params or {}).items()}
    if specs is not None:
        params, rules = specs
        # validate_data's loop over the rules compiled once per route (campaigns.api.cache).
        errors = {}
        for name, validator in rules:
            problem = validator(data.get(name, ""))
            if problem:
                errors[name] = problem.message
    else:
        params = campaign_params(Campaign(template=None, content=req.content))
        errors = validate_data(params, data)
    names = {p.name for p in params}
    for extra in sorted(set(data) - names):
        errors[extra] = gettext("unknown parameter: this template has no such parameter")
    if errors:
        raise ApiError("invalid_params", fields={f"params.{k}": v for k, v in errors.items()})
    return {p.name: data.get(p.name, "") for p in params}


def _policy(template: Template | None, channel: Channel, phone: str) -> None:
    """For promotion templates the quiet hours, the advertising consent and the frequency caps:
    the rules campaigns follow (campaigns.engine.policy), checked before anything is queued.
    The opt-out is checked by the intake's statement itself (campaigns.api.intake), and the
    claim checks opt-outs and caps again at send time, as for every campaign."""
    if template is None or template.tag != Template.Tag.PROMOTION:
        return
    ok, opens = promotion_allowed_at()
    if not ok:
        raise ApiError("quiet_hours", opens=timezone.localtime(opens).strftime("%H:%M %d/%m/%Y"))
    contact = Contact.objects.filter(phone=phone).only("id").first()
    # Opted out comes first (as before the intake): a promotion to an opted-out phone says so.
    if (
        contact is not None
        and OptOut.objects.filter(
            contact_id=contact.pk, channel_kind__in=[channel.kind, OptOut.ALL]
        ).exists()
    ):
        raise ApiError("opted_out")
    # As a campaign's default for promotion templates (Campaign.requires_advertising_consent):
    # refused before anything is queued; the claim checks it again at send time.
    if contact is None or not contact_has_advertising_consent(
        contact_id=contact.pk, channel_kind=channel.kind
    ):
        raise ApiError("no_consent")
    if contacts_frequency_capped(contact_ids=[contact.pk], campaign_id=0, now=timezone.now()):
        raise ApiError("frequency_cap")


# ---- sending ------------------------------------------------------------------------------------


@dataclass
class Idempotency:
    """A single POST's Idempotency-Key and its body's digest (body_digest)."""

    key: str
    digest: str


@dataclass
class Outcome:
    """A POST's answer when it carried a key: a replay of the first answer, or its refusal."""

    status: int
    body: dict
    replayed: bool


def message_send(
    *, key: ApiKey, req: SendRequest, idem: Idempotency | None = None
) -> Accepted | Outcome:
    """Check one message and hand it to the intake (campaigns.api.intake): one row written in
    one statement, made into the engine's one-recipient campaign by its worker. Raises ApiError
    (nothing is written then). With `idem`, the key's first answer may come back instead
    (Outcome, replayed) or idempotency_conflict."""
    channel, template, specs = _resolve(key, req)
    phone = _phone(req, channel)
    data = _params(specs, req)
    promotion = template is not None and template.tag == Template.Tag.PROMOTION
    _policy(template, channel, phone)
    row = IntakeRow(
        application_id=key.application_id,
        key_id=key.pk,
        channel_id=channel.pk,
        channel_kind=channel.kind,
        template_id=template.pk if template is not None else None,
        phone=phone,
        template_data=data,
        content=req.content if template is None else "",
        client_reference=req.client_reference,
        promotion=promotion,
        idempotency_key=idem.key if idem else None,
        body_sha256=idem.digest if idem else "",
    )
    answer = intake_insert(row, window=idempotency_window())
    deadline = time.monotonic() + IDEMPOTENCY_WAIT
    while answer.kind == "record" and answer.status is None:
        # The key's first request (a batch, or a refusal being remembered) is still answering.
        if time.monotonic() > deadline:
            raise ApiError("idempotency_in_progress")
        time.sleep(0.05)
        answer = intake_insert(row, window=idempotency_window())
    if answer.kind == "opted_out":
        raise ApiError("opted_out")
    if answer.kind == "conflict":
        raise ApiError("idempotency_conflict")
    if answer.kind == "record":
        return Outcome(answer.status, answer.body, True)
    if answer.kind == "replay":
        return Outcome(202, {"id": answer.id, "status": "queued"}, True)
    intake_kick()
    return Accepted(api_message_id=answer.id)


def idempotent_refusal(
    *, application_id: int, key: str, body: bytes, refusal: ApiError
) -> tuple[int, dict, bool]:
    """A single POST with an Idempotency-Key refused before the intake: the key's first answer
    if it has one (its accepted message, or 409 for another body), else this refusal,
    remembered (IdempotencyRecord) so the same request answers it again."""
    digest = body_digest(body)
    existing = (
        ApiIntake.objects.filter(
            application_id=application_id,
            idempotency_key=key,
            created_at__gte=timezone.now() - idempotency_window(),
        )
        .values_list("pk", "body_sha256")
        .first()
    )
    if existing:
        if existing[1] != digest:
            raise ApiError("idempotency_conflict")
        return 202, {"id": existing[0], "status": "queued"}, True
    return idempotent(
        application_id=application_id,
        key=key,
        body=body,
        answer=lambda: (refusal.status, refusal.body()),
    )


# ---- idempotency --------------------------------------------------------------------------------

IDEMPOTENCY_WAIT = 5.0  # seconds a second request with the same key waits for the first's answer


def idempotency_window() -> timedelta:
    """How long an Idempotency-Key's answer is remembered (LOA_API_IDEMPOTENCY_HOURS, 24)."""
    return timedelta(hours=float(settings.LOA.get("API_IDEMPOTENCY_HOURS", 24)))


def body_digest(body: bytes) -> str:
    """sha256 of the request body, its JSON canonicalized (key order and spacing do not make a
    different request)."""
    try:
        canonical = json.dumps(json.loads(body or b"null"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()
    except (ValueError, UnicodeDecodeError):
        return hashlib.sha256(body or b"").hexdigest()


def idempotent(*, application_id: int, key: str, body: bytes, answer) -> tuple[int, dict, bool]:
    """(status, body, replayed): the first answer to `key` for this application, made by
    `answer()` -> (status, body) exactly once; the same key with another body raises
    idempotency_conflict.

    The record is inserted in the same transaction as the message: a parallel request with the
    same key blocks on the unique index until the first commits (PostgreSQL; SQLite serializes
    writers), then finds the record and replays it. Answers of 5xx are not kept."""
    idempotency_key_check(key)
    digest = body_digest(body)
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(
                application_id=application_id, key=key, body_sha256=digest
            )
            status, payload = answer()
            if status >= 500:
                raise _Undo(status, payload)
            record.response_status = status
            record.response_body = payload
            record.save(update_fields=["response_status", "response_body"])
            return status, payload, False
    except _Undo as undo:
        return undo.status, undo.payload, False
    except IntegrityError:
        pass
    deadline = time.monotonic() + IDEMPOTENCY_WAIT
    while True:
        record = (
            IdempotencyRecord.objects.filter(application_id=application_id, key=key)
            .only("body_sha256", "response_status", "response_body", "created_at")
            .first()
        )
        if record is None:  # the first request's transaction rolled back: answer it ourselves
            return idempotent(application_id=application_id, key=key, body=body, answer=answer)
        if record.created_at < timezone.now() - idempotency_window():
            # Past the window a key is new again (docs/API.md): the old answer is forgotten.
            IdempotencyRecord.objects.filter(pk=record.pk, created_at=record.created_at).delete()
            return idempotent(application_id=application_id, key=key, body=body, answer=answer)
        if record.body_sha256 != digest:
            raise ApiError("idempotency_conflict")
        if record.response_status is not None:
            return record.response_status, record.response_body, True
        if time.monotonic() > deadline:
            raise ApiError("idempotency_in_progress")
        time.sleep(0.05)


class _Undo(Exception):
    def __init__(self, status: int, payload: dict):
        self.status, self.payload = status, payload


# ---- contacts -----------------------------------------------------------------------------------


def contact_upsert(
    *,
    app: ApiApplication,
    phone: str,
    country: str,
    name: str | None,
    attributes: dict | None,
    consents: list[dict] = (),
    actor: str = "",
) -> tuple[Contact, bool]:
    """Create or update the contact of `phone`: the name when given, attributes merged, and each
    consent given or withdrawn recorded in the consent history (source "api")."""
    result = normalize_phone(phone, mobile_only=False, country=country or "VN")
    if not result.ok:
        raise ApiError("invalid_phone", reason=result.error)
    with transaction.atomic():
        contact, created = Contact.objects.select_for_update().get_or_create(
            phone=result.phone,
            defaults={
                "name": (name or "")[:200],
                "attributes": attributes or {},
                "source": f"api:{app.name}"[:255],
            },
        )
        if not created:
            fields = []
            if name is not None and name != contact.name:
                contact.name = name[:200]
                fields.append("name")
            if attributes:
                contact.attributes = {**(contact.attributes or {}), **attributes}
                fields.append("attributes")
            if fields:
                contact.save(update_fields=[*fields, "updated_at"])
        for c in consents:
            consent_record(
                contact=contact,
                channel_kind=c["channel_kind"],
                purpose=c["purpose"],
                granted=c["granted"],
                source=ConsentSource.API,
                actor=actor or f"api:{app.name}",
                note=c.get("note") or "",
                at=c.get("at"),
            )
    return contact, created


def contact_api_opt_out(
    *, phone: str, country: str, channel_kind: str, reason: str
) -> tuple[OptOut, bool]:
    try:
        return phone_opt_out(
            phone=phone,
            channel_kind=channel_kind,
            reason=reason,
            source=OptOut.Source.API,
            country=country or "VN",
        )
    except InvalidPhone as exc:
        raise ApiError("invalid_phone", reason=str(exc)) from exc
