"""Every refusal of the API: a stable code, an HTTP status, and a message in the request's
language (LocaleMiddleware reads Accept-Language; the messages are gettext_lazy, rendered when
the answer is written). docs/API.md lists them; tests/api/test_api_errors.py answers each."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

# code -> (HTTP status, message)
ERRORS = {
    # the request itself
    "invalid_request": (422, _("The request does not match the API schema.")),
    "body_too_large": (413, _("The request body is larger than this API accepts.")),
    "batch_too_large": (422, _("A batch holds at most {limit} messages.")),
    "rate_limited": (429, _("Too many requests with this key: retry after {retry_after} s.")),
    # keys
    "unauthenticated": (
        401,
        _("Send your API key in the header “Authorization: Bearer <key>”."),
    ),
    "invalid_key": (401, _("This API key is not valid.")),
    "key_revoked": (401, _("This API key was revoked.")),
    "key_expired": (401, _("This API key has expired.")),
    "application_inactive": (403, _("This key's application is deactivated.")),
    "ip_not_allowed": (403, _("This key may not be used from the address {ip}.")),
    "scope_missing": (403, _("This key lacks the scope “{scope}”.")),
    # what to send, and on what
    "channel_not_found": (404, _("No active channel with this id.")),
    "channel_not_allowed": (403, _("This key may not send on the channel “{channel}”.")),
    "template_not_found": (404, _("No template with this id.")),
    "template_not_approved": (422, _("The template “{template}” is not approved.")),
    "template_required": (
        422,
        _("Give a template (this channel sends provider templates only) or a text content."),
    ),
    "channel_template_mismatch": (
        422,
        _("The template “{template}” cannot be sent on the channel “{channel}”."),
    ),
    "no_channel_for_template": (
        422,
        _("No active channel this key may use sends the template “{template}”."),
    ),
    "invalid_phone": (422, _("The phone number is not valid: {reason}")),
    "invalid_params": (422, _("Some template parameters are not valid.")),
    # sending policy, as in campaigns
    "unreachable": (422, _("The channel cannot reach this phone: {reason}.")),
    "opted_out": (422, _("The recipient opted out of this channel.")),
    "no_consent": (
        422,
        _("A promotion goes only to people with advertising consent for this channel."),
    ),
    "quiet_hours": (
        422,
        _("Promotion messages may not be sent now (quiet hours); the window opens at {opens}."),
    ),
    "frequency_cap": (
        422,
        _("The recipient already got the most promotion messages allowed."),
    ),
    # reading
    "message_not_found": (404, _("No message with this id for your application.")),
    "not_found": (404, _("Nothing here: see /api/v1/docs.")),
    "method_not_allowed": (405, _("This method is not allowed here.")),
    # idempotency
    "idempotency_conflict": (
        409,
        _("This Idempotency-Key was already used with a different request body."),
    ),
    "idempotency_in_progress": (
        409,
        _("A request with this Idempotency-Key is still being answered: retry in a moment."),
    ),
    "invalid_idempotency_key": (
        422,
        _("The Idempotency-Key must be 1 to 255 printable ASCII characters."),
    ),
    "internal_error": (500, _("Loa hit an internal error; nothing was queued.")),
}


class ApiError(Exception):
    """A refusal: raised anywhere below the views, written as {code, message, ...extra}."""

    def __init__(
        self, code: str, *, fields: dict | None = None, headers: dict | None = None, **fmt
    ):
        super().__init__(code)
        self.code = code
        self.status = ERRORS[code][0]
        self.fmt = fmt
        self.fields = fields
        self.headers = headers or {}

    @property
    def message(self) -> str:
        text = str(ERRORS[self.code][1])
        return text.format(**self.fmt) if self.fmt else text

    def body(self) -> dict:
        out = {"code": self.code, "message": self.message}
        if self.fields:
            out["fields"] = {k: str(v) for k, v in self.fields.items()}
        return out
