"""The test send: one template, one phone, the values typed by a person, sent in the provider's
test mode (eTelecom mode=development, eSMS Sandbox=1). No Message row is written; nothing here
touches a campaign."""

from __future__ import annotations

import json
import logging
import secrets

from django.utils.translation import gettext as _

from providers.base import OutboundMessage, SendOutcome, SendResult
from providers.errors import explain
from providers.models import Channel, ChannelKind
from providers.reach import unreachable_reason
from providers.redact import redact_text
from providers.shared.errors import Refused
from providers.shared.phones import (
    CALLING_CODES,
    DEFAULT_COUNTRY,
    normalize_phone,
    phone_country,
)
from templates_app.content import render_content
from templates_app.formatting import nfc
from templates_app.models import Template
from templates_app.params import template_params
from templates_app.sync import provider_error_text
from templates_app.validation import validate_data

logger = logging.getLogger("loa.templates")


def template_test_send(*, template: Template, channel: Channel, phone: str, data: dict) -> str:
    """Send this template once to one phone in the provider's test mode and say what the provider
    answered (the sentence shown to the person who asked).

    The values are validated first: a value Zalo would refuse is not sent at all. Raises Refused
    when it is not sent or the provider refuses it.
    """
    number = _test_send_phone(template=template, channel=channel, phone=phone)
    params = template_params(template=template)
    values = {p.name: nfc(str((data or {}).get(p.name) or "").strip()) for p in params}
    errors = validate_data(params, values)
    if errors:
        raise Refused(
            _("Not sent, the provider would refuse it: {errors}").format(
                errors="; ".join(f"{k}: {v}" for k, v in errors.items())
            ),
            code="invalid_values",
        )
    message = _test_message(
        template=template, channel=channel, phone=number, values=values, params=params
    )
    provider = channel.account.get_provider()
    call = None
    try:
        result = provider.send(message)
        call = provider.pop_last_call()
    except Exception as exc:  # shown in words, never a traceback
        logger.exception("test send failed for template %s", template.pk)
        raise Refused(
            _("The provider module failed: {error}").format(error=provider_error_text(exc)),
            code="provider_failed",
        ) from exc
    finally:
        provider.close()
    if call is not None and call.response_body:
        answer = call.response_body
    else:
        answer = redact_text(
            json.dumps(result.raw, ensure_ascii=False, default=str)[:2000], provider.secret_values()
        )
    return _test_send_outcome(result=result, answer=answer)


def _test_send_phone(*, template: Template, channel: Channel, phone: str) -> str:
    """The normalized phone, once the channel is one this template may be sent on and reaches
    it (channel_test_phone)."""
    number = channel_test_phone(channel=channel, phone=phone)
    if channel.account_id != template.account_id:
        raise Refused(
            _("This channel belongs to another provider account than the template."),
            code="other_account",
        )
    if not channel.is_active or not channel.account.is_active:
        raise Refused(_("The channel or its provider account is inactive."), code="inactive")
    if channel.kind != template.channel_kind:
        raise Refused(
            _("This is a {template_kind} template; choose a {template_kind} channel.").format(
                template_kind=template.get_channel_kind_display()
            ),
            code="wrong_channel_kind",
        )
    return number


def channel_test_phone(*, channel: Channel, phone: str) -> str:
    """A phone typed for a test send, normalized, once the channel reaches it (also the
    campaign test send's: campaigns.testsends). A local number ("012 345 678") is read in the
    channel's country when the channel reaches one served country only (Metfone SMS:
    Cambodia), in Vietnam's otherwise. Raises Refused (invalid_phone, unreachable)."""
    reach = channel.account.provider_class.reach_for(channel.kind, channel.account.settings)
    served = sorted(set(reach.countries or ()) & set(CALLING_CODES))
    country = served[0] if len(served) == 1 else DEFAULT_COUNTRY
    result_phone = normalize_phone(phone, country=country)
    if not result_phone.phone:
        raise Refused(
            result_phone.error or _("The phone number is not valid."), code="invalid_phone"
        )
    if not reach.reaches(result_phone.phone):
        # The campaign would skip this number (campaigns.engine.reach): a test must not pass
        # where the real send cannot go.
        reason = unreachable_reason(reach, phone_country(result_phone.phone))
        # Only the first letter up: str.capitalize() lowered the country names ("vietnam").
        raise Refused(reason[:1].upper() + reason[1:] + ".", code="unreachable")
    return result_phone.phone


def _test_message(
    *, template: Template, channel: Channel, phone: str, values: dict, params: list
) -> OutboundMessage:
    content = subject = ""
    if template.channel_kind != ChannelKind.ZALO_ZNS:
        rendered = render_content(
            channel_kind=template.channel_kind,
            body=template.body,
            data=values,
            subject=template.subject,
            strip_diacritics=template.strip_diacritics,
        )
        content = rendered.outbound
        subject = rendered.subject
    oa_id = ""
    if channel.official_account_id:
        oa_id = channel.official_account.oa_id
    elif template.official_account_id:
        oa_id = template.official_account.oa_id
    # As a campaign sends it (campaigns.engine.send): by its id only when the provider renders it.
    by_id = template.sent_by_id
    return OutboundMessage(
        # Unique per attempt, alphanumeric (Zalo tracking_id: <=48 chars, no special characters).
        idempotency_key=f"loatest{secrets.token_hex(10)}",
        phone=phone,
        template_id=template.provider_template_id if by_id else "",
        template_data=values,
        param_order=tuple(p.name for p in params),
        channel_kind=channel.kind,
        oa_id=oa_id,
        channel_external_id=channel.external_id,
        test_mode=True,
        content=content,
        subject=subject,
        application_id=channel.application_id,
    )


def _test_send_outcome(*, result: SendResult, answer: str) -> str:
    if result.outcome == SendOutcome.ACCEPTED:
        return _(
            "Accepted by the provider in test mode (message id {id}). The provider answered: {answer}"
        ).format(id=result.provider_message_id or "-", answer=answer)
    meaning = explain(result.error_code)
    raise Refused(
        _(
            "Refused by the provider: {code} {message}{meaning}. The provider answered: {answer}"
        ).format(
            code=result.error_code,
            message=result.error_message,
            meaning=f" ({meaning})" if meaning and meaning != result.error_message else "",
            answer=answer,
        ),
        code="provider_refused",
    )
