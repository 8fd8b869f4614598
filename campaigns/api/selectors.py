"""What the API reads: one message with its history, messages by client reference, templates."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from django.utils.translation import gettext

from campaigns.api.models import ApiIntake, ApiKey, ApiMessage
from campaigns.api.services import key_channel_ids
from campaigns.api.statuses import public_status
from campaigns.models import Message, MessageAttempt
from providers.errors import explain
from providers.models import Channel
from templates_app.models import Template, TemplateParam
from templates_app.params import template_params
from templates_app.validation import rule_for

S = Message.Status
MAX_BY_REFERENCE = 100
_RANK = {"queued": 0, "provider_call": 1, "sent": 2, "delivered": 3, "read": 4, "failed": 4}


def _messages(application_id: int) -> QuerySet[ApiMessage]:
    return (
        ApiMessage.objects.filter(application_id=application_id)
        .select_related("message", "campaign")
        .prefetch_related(
            Prefetch(
                "message__attempts_log",
                queryset=MessageAttempt.objects.order_by("created_at", "id").only(
                    "id", "message_id", "status_code", "error", "error_class", "created_at"
                ),
            )
        )
    )


def api_message_get(*, application_id: int, api_message_id: int) -> dict | None:
    row = _messages(application_id).filter(pk=api_message_id).first()
    if row is not None:
        return message_view(row)
    # Accepted, not made yet by the intake worker (or failed there): its intake row.
    intake = _intakes(application_id).filter(pk=api_message_id).first()
    return intake_view(intake) if intake else None


def api_messages_by_reference(*, application_id: int, client_reference: str) -> list[dict]:
    rows = _messages(application_id).filter(client_reference=client_reference)
    views = [message_view(r) for r in rows.order_by("-created_at", "-id")[:MAX_BY_REFERENCE]]
    intakes = _intakes(application_id).filter(client_reference=client_reference)
    views += [intake_view(r) for r in intakes.order_by("-created_at", "-id")[:MAX_BY_REFERENCE]]
    views.sort(key=lambda v: (v["created_at"], v["id"]), reverse=True)
    return views[:MAX_BY_REFERENCE]


def _intakes(application_id: int) -> QuerySet[ApiIntake]:
    return ApiIntake.objects.filter(application_id=application_id).exclude(
        state=ApiIntake.State.MADE
    )


def intake_view(row: ApiIntake) -> dict:
    """An accepted message the intake worker has not made yet (queued), or could not make
    (failed, code intake_failed: the row's error is logged, not shown to the client)."""
    failed = row.state == ApiIntake.State.FAILED
    history = [{"status": "queued", "at": row.created_at, "detail": ""}]
    if failed:
        history.append({"status": "failed", "at": row.processed_at or row.created_at, "detail": ""})
    return {
        "id": row.pk,
        "status": "failed" if failed else "queued",
        "phone": row.phone,
        "channel_id": row.channel_id,
        "template_id": row.template_id,
        "client_reference": row.client_reference,
        "params": row.template_data or {},
        "created_at": row.created_at,
        "sent_at": None,
        "delivered_at": None,
        "read_at": None,
        "failed_at": row.processed_at if failed else None,
        "provider_message_id": "",
        "fee": None,
        "error": {
            "code": "intake_failed",
            "meaning": gettext("Loa could not queue this message; nothing was sent."),
            "provider_message": "",
        }
        if failed
        else None,
        "history": history,
    }


def message_view(row: ApiMessage) -> dict:
    """One API message as GET /api/v1/messages/{id} shows it: its public status, the history
    (queued, each provider call, then what the provider reported), the error and the fee."""
    m: Message = row.message
    history = [{"status": "queued", "at": row.created_at, "detail": ""}]
    for attempt in m.attempts_log.all():
        if attempt.status_code is not None:
            detail = f"HTTP {attempt.status_code}"
        else:
            detail = "no answer recorded"
        if attempt.error:
            detail = f"{detail}: {attempt.error}"
        history.append({"status": "provider_call", "at": attempt.created_at, "detail": detail})
    for status, at in (
        ("sent", m.sent_at),
        ("delivered", m.delivered_at),
        ("read", m.read_at),
        ("failed", m.failed_at),
    ):
        if at is not None:
            history.append({"status": status, "at": at, "detail": ""})
    if m.status in (S.SKIPPED, S.CANCELLED):
        history.append({"status": public_status(m.status), "at": m.updated_at, "detail": ""})
    # In the order the steps follow each other (a delivery receipt may be recorded a moment
    # before the provider's answer to the send), then by time.
    history.sort(key=lambda h: (_RANK.get(h["status"], 9), h["at"]))
    error = None
    if m.error_code and m.status in (S.FAILED, S.SKIPPED, S.CANCELLED, S.UNKNOWN, S.PENDING):
        error = {
            "code": m.error_code,
            "meaning": explain(m.error_code) or m.error_message,
            "provider_message": m.error_message,
        }
    return {
        "id": row.pk,
        "status": public_status(m.status),
        "phone": m.phone,
        "channel_id": row.campaign.channel_id,
        "template_id": row.campaign.template_id,
        "client_reference": row.client_reference,
        "params": m.template_data or {},
        "created_at": row.created_at,
        "sent_at": m.sent_at,
        "delivered_at": m.delivered_at,
        "read_at": m.read_at,
        "failed_at": m.failed_at,
        "provider_message_id": m.provider_message_id,
        "fee": float(m.fee) if m.fee is not None else None,
        "error": error,
        "history": history,
    }


def templates_for_key(*, key: ApiKey) -> list[dict]:
    """Approved templates this key can send: of an account and kind one of its channels has."""
    allowed = key_channel_ids(key)
    channels = Channel.objects.filter(is_active=True, account__is_active=True)
    if allowed is not None:
        channels = channels.filter(pk__in=allowed)
    routes = list(channels.values("id", "account_id", "kind", "official_account_id"))
    templates = (
        Template.objects.filter(status=Template.Status.APPROVED)
        .prefetch_related(Prefetch("params", queryset=TemplateParam.objects.order_by("position")))
        .order_by("id")
    )
    out = []
    for t in templates.filter(account_id__in={r["account_id"] for r in routes}):
        channel_ids = [
            r["id"]
            for r in routes
            if r["account_id"] == t.account_id
            and r["kind"] == t.channel_kind
            and (not t.official_account_id or r["official_account_id"] == t.official_account_id)
        ]
        if not channel_ids:
            continue
        out.append(
            {
                "id": t.pk,
                "name": t.name,
                "channel_kind": t.channel_kind,
                "tag": t.tag,
                "channel_ids": channel_ids,
                "price": float(t.price),
                "params": [_param(p) for p in template_params(template=t)],
            }
        )
    return out


def _param(p) -> dict:
    rule = rule_for(p)
    return {
        "name": p.name,
        "type": rule.param_type,
        "required": rule.required,
        "min_length": rule.min_length,
        "max_length": rule.max_length,
    }
