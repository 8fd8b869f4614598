"""The HTTP face of the API (/api/v1/, django-ninja): schemas, authentication per scope, the
refusal format, and thin views over campaigns.api.services and selectors.

Every refusal is JSON {code, message[, fields]} with the message in the request's language
(Accept-Language vi/en through LocaleMiddleware); campaigns/api/errors.py lists the codes."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Literal

from django.conf import settings
from django.http import Http404, HttpRequest, JsonResponse
from ninja import Field, Header, NinjaAPI, Path, Query, Schema, Status
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import HttpBearer
from pydantic import field_validator

from campaigns.api import selectors, services
from campaigns.api.auth import key_authenticate
from campaigns.api.errors import ApiError
from campaigns.api.models import ApiKey
from campaigns.models import OptOut

logger = logging.getLogger("loa.api")

MAX_ID = 2**63 - 1
Scope = ApiKey.Scope


class KeyAuth(HttpBearer):
    """`Authorization: Bearer <key>`, for one scope (campaigns.api.auth)."""

    openapi_scheme = "bearer"

    def __init__(self, scope: str):
        super().__init__()
        self.scope = scope

    def __call__(self, request: HttpRequest):
        # A missing or malformed header is "unauthenticated", with our error body.
        return super().__call__(request)

    def authenticate(self, request: HttpRequest, token: str):
        return key_authenticate(request, token, self.scope)


api = NinjaAPI(
    title="Loa transactional API",
    version="1",
    description=(
        "Send one templated message (order confirmations, OTPs, reminders) through Loa's "
        "engine, read its status, list templates, manage contacts. See docs/API.md."
    ),
    urls_namespace="api-v1",
    docs_url="/docs",
    openapi_url="/openapi.json",
)


# ---- refusals -----------------------------------------------------------------------------------


def _error_response(err: ApiError) -> JsonResponse:
    response = JsonResponse(
        err.body(), status=err.status, json_dumps_params={"ensure_ascii": False}
    )
    for k, v in err.headers.items():
        response[k] = v
    return response


@api.exception_handler(ApiError)
def _on_api_error(request, exc: ApiError):
    return _error_response(exc)


@api.exception_handler(AuthenticationError)
def _on_unauthenticated(request, exc):
    return _error_response(ApiError("unauthenticated"))


@api.exception_handler(NinjaValidationError)
def _on_invalid(request, exc: NinjaValidationError):
    fields = {}
    for e in exc.errors:
        loc = [str(p) for p in e.get("loc", ()) if p not in ("body", "payload", "query", "path")]
        fields[".".join(loc) or "body"] = e.get("msg", "")
    return _error_response(ApiError("invalid_request", fields=fields))


@api.exception_handler(Http404)
def _on_404(request, exc):
    return _error_response(ApiError("not_found"))


@api.exception_handler(HttpError)
def _on_http_error(request, exc: HttpError):
    if exc.status_code == 405:
        return _error_response(ApiError("method_not_allowed"))
    if exc.status_code == 404:
        return _error_response(ApiError("not_found"))
    return _error_response(ApiError("invalid_request", fields={"body": str(exc)}))


@api.exception_handler(Exception)
def _on_crash(request, exc):
    logger.exception("API error on %s %s", request.method, request.path)
    return _error_response(ApiError("internal_error"))


# ---- schemas ------------------------------------------------------------------------------------


def _clean_text(v):
    """PostgreSQL stores no NUL character: refused as invalid input, never a 500."""
    if isinstance(v, str) and "\x00" in v:
        raise ValueError("must not contain NUL characters")
    return v


class Error(Schema):
    code: str
    message: str
    fields: dict[str, str] | None = None


ParamValue = str | int | float | bool | None


class MessageIn(Schema):
    phone: str = Field(
        ..., min_length=1, max_length=40, description="Any format: 0912..., +84 912..., 855..."
    )
    template_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="An approved template; it implies the channel."
    )
    channel_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="A channel; with a template, it must send it."
    )
    params: dict[str, ParamValue] = Field(
        default_factory=dict, description="The template's parameters, by name."
    )
    content: str = Field(
        "", max_length=2000, description="Text for a content channel (SMS...) without template."
    )
    country: Literal["VN", "KH"] = Field(
        "VN", description="Where a number written without +84/+855 is read."
    )
    client_reference: str = Field("", max_length=100)

    @field_validator("phone", "content", "client_reference")
    @classmethod
    def _no_nul(cls, v):
        return _clean_text(v)

    @field_validator("params")
    @classmethod
    def _params_no_nul(cls, v: dict):
        for k, value in v.items():
            _clean_text(k)
            _clean_text(value)
            if len(k) > 100 or (isinstance(value, str) and len(value) > 2000):
                raise ValueError("parameter names <= 100 and values <= 2000 characters")
        return v

    def to_request(self) -> services.SendRequest:
        return services.SendRequest(
            phone=self.phone,
            template_id=self.template_id,
            channel_id=self.channel_id,
            params={k: v for k, v in self.params.items() if v is not None},
            content=self.content,
            country=self.country,
            client_reference=self.client_reference,
        )


class Queued(Schema):
    id: int
    status: Literal["queued"]


class BatchIn(Schema):
    messages: list[MessageIn] = Field(..., min_length=1)


class BatchItem(Schema):
    index: int
    http_status: int
    id: int | None = None
    status: str | None = None
    code: str | None = None
    message: str | None = None
    fields: dict[str, str] | None = None


class BatchOut(Schema):
    accepted: int
    refused: int
    results: list[BatchItem]


class HistoryItem(Schema):
    status: str
    at: datetime
    detail: str


class MessageErrorOut(Schema):
    code: str
    meaning: str
    provider_message: str


class MessageOut(Schema):
    id: int
    status: Literal[
        "queued", "sending", "sent", "delivered", "read", "failed", "rejected", "cancelled"
    ]
    phone: str
    channel_id: int
    template_id: int | None
    client_reference: str
    params: dict[str, str]
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None
    provider_message_id: str
    fee: float | None = Field(None, description="VND, when the provider reported it")
    error: MessageErrorOut | None
    history: list[HistoryItem]


class MessageList(Schema):
    results: list[MessageOut]


class ParamOut(Schema):
    name: str
    type: str
    required: bool
    min_length: int
    max_length: int | None


class TemplateOut(Schema):
    id: int
    name: str
    channel_kind: str
    tag: str
    channel_ids: list[int]
    price: float
    params: list[ParamOut]


class TemplateList(Schema):
    results: list[TemplateOut]


class ConsentIn(Schema):
    """A consent the person gave (or withdrew) where the calling system collected it: recorded in
    Loa's consent history with source "api" (docs/PRIVACY.md, "Consent")."""

    channel_kind: Literal[tuple(v for v, _label in OptOut.CHANNEL_CHOICES)]  # type: ignore[valid-type]
    purpose: Literal["advertising", "customer_care"] = "advertising"
    granted: bool = True
    at: datetime | None = None
    note: str = Field("", max_length=500)


class ContactIn(Schema):
    phone: str = Field(..., min_length=1, max_length=40)
    country: Literal["VN", "KH"] = "VN"
    name: str | None = Field(None, max_length=200)
    attributes: dict[str, ParamValue] | None = None
    consents: list[ConsentIn] | None = Field(None, max_length=20)

    @field_validator("phone", "name")
    @classmethod
    def _no_nul(cls, v):
        return _clean_text(v)

    @field_validator("attributes")
    @classmethod
    def _attrs(cls, v):
        for k, value in (v or {}).items():
            _clean_text(k)
            _clean_text(value)
            if len(k) > 100 or (isinstance(value, str) and len(value) > 2000):
                raise ValueError("attribute names <= 100 and values <= 2000 characters")
        return v


class ContactOut(Schema):
    id: int
    phone: str
    name: str
    attributes: dict
    created: bool
    consents_recorded: int = 0


OptOutKind = Literal[tuple(v for v, _label in OptOut.CHANNEL_CHOICES)]  # type: ignore[valid-type]


class OptOutIn(Schema):
    channel_kind: OptOutKind = "all"  # type: ignore[valid-type]
    reason: str = Field("", max_length=300)
    country: Literal["VN", "KH"] = "VN"

    @field_validator("reason")
    @classmethod
    def _no_nul(cls, v):
        return _clean_text(v)


class OptOutOut(Schema):
    phone: str
    channel_kind: str
    created: bool
    opted_out_at: datetime


ERRORS_SEND = {c: Error for c in (401, 403, 404, 409, 413, 422, 429)}
ERRORS_READ = {c: Error for c in (401, 403, 404, 413, 422, 429)}


# ---- messages -----------------------------------------------------------------------------------


def _send_one(request, key: ApiKey, item: MessageIn) -> tuple[int, dict]:
    try:
        accepted = services.message_send(key=key, req=item.to_request())
    except ApiError as err:
        return err.status, err.body()
    return 202, {"id": accepted.api_message_id, "status": "queued"}


def _json(status: int, body: dict, replayed: bool = False) -> JsonResponse:
    response = JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return response


def _idempotent(request, key: ApiKey, idem: str | None, answer) -> JsonResponse:
    if idem is None:
        status, body = answer()
        replayed = False
    else:
        status, body, replayed = services.idempotent(
            application_id=key.application_id, key=idem, body=request.body, answer=answer
        )
    response = JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return response


@api.post(
    "/messages",
    auth=KeyAuth(Scope.SEND),
    response={202: Queued, **ERRORS_SEND},
    summary="Send one message",
    tags=["messages"],
)
def message_create(
    request,
    payload: MessageIn,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key", max_length=255),
):
    """Queue one message: 202 with its id and status "queued". With an Idempotency-Key, the same
    key and body answer the first answer again; another body, 409."""
    key = request.auth
    idem = None
    if idempotency_key is not None:
        services.idempotency_key_check(idempotency_key)
        idem = services.Idempotency(idempotency_key, services.body_digest(request.body))
    try:
        outcome = services.message_send(key=key, req=payload.to_request(), idem=idem)
    except ApiError as err:
        if idem is None or err.status >= 500 or err.code == "idempotency_conflict":
            raise
        # A refusal before the intake: the key's first answer, else this one, remembered.
        return _json(
            *services.idempotent_refusal(
                application_id=key.application_id,
                key=idempotency_key,
                body=request.body,
                refusal=err,
            )
        )
    if isinstance(outcome, services.Outcome):
        return _json(outcome.status, outcome.body, outcome.replayed)
    return _json(202, {"id": outcome.api_message_id, "status": "queued"})


@api.post(
    "/messages/batch",
    auth=KeyAuth(Scope.SEND),
    response={200: BatchOut, **ERRORS_SEND},
    summary="Send up to 1,000 messages, each answered on its own",
    tags=["messages"],
)
def message_batch(
    request,
    payload: BatchIn,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key", max_length=255),
):
    limit = int(settings.LOA.get("API_BATCH_MAX", 1000))
    if len(payload.messages) > limit:
        raise ApiError("batch_too_large", limit=limit)
    key = request.auth

    def answer():
        results, accepted = [], 0
        for i, item in enumerate(payload.messages):
            status, body = _send_one(request, key, item)
            accepted += status == 202
            results.append({"index": i, "http_status": status, **body})
        return 200, {"accepted": accepted, "refused": len(results) - accepted, "results": results}

    return _idempotent(request, key, idempotency_key, answer)


@api.get(
    "/messages/{message_id}",
    auth=KeyAuth(Scope.READ_STATUS),
    response={200: MessageOut, **ERRORS_READ},
    summary="One message: status, history, error, fee",
    tags=["messages"],
)
def message_get(request, message_id: int = Path(..., ge=1, le=MAX_ID)):
    view = selectors.api_message_get(
        application_id=request.auth.application_id, api_message_id=message_id
    )
    if view is None:
        raise ApiError("message_not_found")
    return view


@api.get(
    "/messages",
    auth=KeyAuth(Scope.READ_STATUS),
    response={200: MessageList, **ERRORS_READ},
    summary="Messages with a client reference (newest first, at most 100)",
    tags=["messages"],
)
def message_list(request, client_reference: str = Query(..., min_length=1, max_length=100)):
    _clean_text_or_refuse(client_reference, "client_reference")
    return {
        "results": selectors.api_messages_by_reference(
            application_id=request.auth.application_id, client_reference=client_reference
        )
    }


def _clean_text_or_refuse(value: str, name: str) -> None:
    try:
        _clean_text(value)
    except ValueError as exc:
        raise ApiError("invalid_request", fields={name: str(exc)}) from exc


# ---- templates ----------------------------------------------------------------------------------


@api.get(
    "/templates",
    auth=KeyAuth(Scope.READ_TEMPLATES),
    response={200: TemplateList, **ERRORS_READ},
    summary="Approved templates this key can send, with their parameters and rules",
    tags=["templates"],
)
def template_list(request):
    return {"results": selectors.templates_for_key(key=request.auth)}


# ---- contacts -----------------------------------------------------------------------------------


@api.post(
    "/contacts",
    auth=KeyAuth(Scope.MANAGE_CONTACTS),
    response={200: ContactOut, 201: ContactOut, **ERRORS_READ},
    summary="Create or update a contact (by phone)",
    tags=["contacts"],
)
def contact_upsert(request, payload: ContactIn):
    contact, created = services.contact_upsert(
        app=request.auth.application,
        phone=payload.phone,
        country=payload.country,
        name=payload.name,
        attributes={k: v for k, v in (payload.attributes or {}).items()},
        consents=[c.dict() for c in payload.consents or []],
        actor=f"api:{request.auth.name}",
    )
    return Status(
        201 if created else 200,
        {
            "id": contact.pk,
            "phone": contact.phone,
            "name": contact.name,
            "attributes": contact.attributes or {},
            "created": created,
            "consents_recorded": len(payload.consents or []),
        },
    )


@api.post(
    "/contacts/{phone}/opt-out",
    auth=KeyAuth(Scope.MANAGE_CONTACTS),
    response={200: OptOutOut, 201: OptOutOut, **ERRORS_READ},
    summary="Record that a phone refuses a channel (or all)",
    tags=["contacts"],
)
def contact_opt_out(
    request, phone: str = Path(..., max_length=40), payload: OptOutIn | None = None
):
    _clean_text_or_refuse(phone, "phone")
    payload = payload or OptOutIn()
    opt_out, created = services.contact_api_opt_out(
        phone=phone,
        country=payload.country,
        channel_kind=payload.channel_kind,
        reason=payload.reason,
    )
    return Status(
        201 if created else 200,
        {
            "phone": opt_out.contact.phone,
            "channel_kind": opt_out.channel_kind,
            "created": created,
            "opted_out_at": opt_out.created_at,
        },
    )
