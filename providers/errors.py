"""One error model for every provider: what the engine does about a code, and what it means.

Every failure ends in one of five classes (providers.base.ErrorClass):

- RETRYABLE: nothing was done (connect error, the provider asked us to slow down): send again later;
- AMBIGUOUS: the outcome is unknown (timeout or reset after sending, 5xx): reconcile first;
- DEFERRED: quota or Zalo's night window (-133): send again at the next allowed time;
- PERMANENT: this recipient can never get this message (-108, -114, -118, -139, -141, ...);
- CONFIGURATION: bad key, unknown OA or template: pause the campaign and tell a human.

Tables here: Zalo ZNS codes (shared: eTelecom passes them in `error_code`, eSMS in
`error_info.error`), eTelecom's Twirp error envelope, eSMS's CodeResult table, and the
transport/HTTP codes every adapter produces: every code table in one module, so explain() reads them
all and each adapter imports the one it needs.

Zalo source: providers.md §4.5 (Zalo's error appendix via go-zns-wrapper errcode.go, zalo-otp
ZaloErrorCode.php and zalo.cloud "handle error code").
"""

import re

from django.utils.translation import gettext as _g
from django.utils.translation import gettext_lazy as _

from providers.base import UNPROVEN, ErrorClass

R, A, D, P, C = (
    ErrorClass.RETRYABLE,
    ErrorClass.AMBIGUOUS,
    ErrorClass.DEFERRED,
    ErrorClass.PERMANENT,
    ErrorClass.CONFIGURATION,
)

# code -> (class, explanation shown to marketers; translated)
ZALO_ERRORS: dict[int, tuple[ErrorClass, str]] = {
    -100: (R, _("Zalo had an unknown error.")),
    -101: (C, _("The Zalo app is invalid.")),
    -102: (C, _("The Zalo app does not exist.")),
    -103: (C, _("The Zalo app is not activated.")),
    -104: (C, _("The Zalo app secret is invalid.")),
    -105: (C, _("The Zalo app is not linked to this Official Account.")),
    -106: (C, _("Zalo does not support this method.")),
    -107: (P, _("The message id is invalid.")),
    -108: (P, _("The phone number is invalid.")),
    -109: (C, _("The template id is invalid.")),
    -1091: (C, _("This template can no longer be edited.")),
    -110: (P, _("The recipient's Zalo version is too old.")),
    -111: (P, _("The template data is empty.")),
    -112: (P, _("A template parameter has an undefined type.")),
    -1121: (P, _("A parameter is longer than the template allows.")),
    -1122: (P, _("A required parameter is missing.")),
    -1123: (P, _("The QR code could not be generated from the parameter.")),
    -1124: (P, _("A parameter has an invalid format.")),
    -113: (C, _("A template button is invalid.")),
    -1131: (C, _("A template button is invalid.")),
    -114: (
        P,
        _(
            "The user is inactive, refused the message, uses an outdated app, or Zalo had an internal problem."
        ),
    ),
    -115: (C, _("The ZNS balance is exhausted: top up the account.")),
    -116: (P, _("The message text is invalid.")),
    -117: (C, _("The Official Account has no permission to send this template.")),
    -118: (P, _("The phone number has no Zalo account.")),
    -119: (P, _("This Zalo account cannot receive messages.")),
    -120: (C, _("The Official Account lacks this permission.")),
    -1201: (C, _("The Official Account may not create templates.")),
    -1202: (C, _("The Official Account lacks a resource permission.")),
    # Our request itself was malformed: the same for every recipient, so stop and tell a human.
    -121: (C, _("The request body was empty.")),
    -122: (C, _("The request body format is invalid.")),
    -123: (C, _("Zalo could not decode the RSA-encrypted data.")),
    -124: (C, _("The Zalo access token is invalid or expired.")),
    -1241: (C, _("The appsecret_proof is invalid.")),
    -125: (C, _("The Official Account id is invalid.")),
    -126: (D, _("The development-mode quota is used up.")),
    -127: (P, _("A test template can only be sent to the app's or OA's administrators.")),
    -128: (C, _("RSA key problem.")),
    -129: (C, _("RSA key problem.")),
    -130: (P, _("The message is longer than allowed.")),
    -131: (C, _("The template is not approved.")),
    -132: (P, _("A parameter is invalid.")),
    -133: (
        D,
        _("This template cannot be sent at night (22:00-06:00); it will be sent in the morning."),
    ),
    -134: (P, _("The user has not opted in to receive this message.")),
    -135: (C, _("This Official Account may not send ZNS (unverified or free tier).")),
    -1351: (C, _("This Official Account is blocked.")),
    -136: (C, _("A ZCA association is required.")),
    -137: (C, _("The ZCA wallet balance could not be charged.")),
    -138: (C, _("The app has no permission for this action.")),
    -1381: (C, _("The app has no permission for this action.")),
    -139: (P, _("The user refused this type of ZNS.")),
    -140: (P, _("The Official Account may not send follow-up messages to this user.")),
    -141: (P, _("The user refused ZNS from this Official Account.")),
    -142: (C, _("RSA key problem.")),
    -143: (C, _("RSA key problem.")),
    -144: (D, _("The Official Account's daily quota is used up; sending continues tomorrow.")),
    -1441: (D, _("The monthly promotion quota is used up.")),
    -145: (C, _("The Official Account may not send this type of ZNS.")),
    -146: (C, _("Zalo disabled this template for low quality.")),
    -147: (D, _("The template's daily quota is used up; sending continues tomorrow.")),
    -1471: (P, _("The monthly follow-up limit for this user is reached.")),
    -148: (P, _("The journey token is missing.")),
    -149: (P, _("The journey token is invalid.")),
    -1491: (P, _("The journey token type is wrong.")),
    -150: (P, _("The journey token has expired.")),
    -151: (C, _("End-to-end encryption problem.")),
    -152: (C, _("End-to-end encryption problem.")),
    -153: (P, _("The data is invalid.")),
    -158: (C, _("Upload limit reached.")),
    -159: (C, _("Upload limit reached.")),
    -160: (D, _("The daily quota is used up.")),
    -220: (C, _("The Zalo access token has expired or was removed.")),
}


def classify_zalo(code: int | str | None) -> tuple[ErrorClass, str]:
    """Class and human meaning of a Zalo code; unknown codes are permanent for that recipient
    (conservative: never loop on a code we do not understand) and say so."""
    try:
        icode = int(code)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return P, str(_("Unknown error code {code}.")).format(code=code)
    if icode in ZALO_ERRORS:
        klass, text = ZALO_ERRORS[icode]
        return klass, str(text)
    return P, str(_("Zalo error {code}.")).format(code=icode)


# eTelecom's error envelope is Twirp's: {"code": "<twirp code>", "msg": "..."} with the HTTP status
# Twirp assigns to that code (providers.md §1.1: invalid_argument 400, unauthenticated 401,
# bad_route when Content-Type is missing; the rest is the Twirp spec, twitchtv/twirp errors.go).
TWIRP_CODES: dict[str, tuple[ErrorClass, str]] = {
    # The request did not pass validation. At send time that is nearly always our configuration
    # (OA id, template id, parameters the template does not have) rather than one recipient, and a
    # wrong class would fail a whole list: pause and show the provider's text. (Zalo codes embedded
    # in the message are classified by the Zalo table instead; see classify_twirp.)
    "invalid_argument": (C, _("The provider refused the request as invalid.")),
    "malformed": (C, _("The provider could not read our request.")),
    "out_of_range": (C, _("A value in the request is out of range.")),
    "bad_route": (C, _("The provider does not know this address: check the base URL.")),
    "not_found": (C, _("The provider did not find the OA, template or message requested.")),
    "unauthenticated": (C, _("The provider refused the API key.")),
    "permission_denied": (C, _("The API key has no permission for this.")),
    "failed_precondition": (C, _("The provider refused: the account or OA is not ready.")),
    "unimplemented": (C, _("The provider does not support this operation.")),
    # Refused before doing anything: safe to try again later.
    "resource_exhausted": (R, _("The provider asked us to slow down.")),
    "aborted": (R, _("The provider aborted the request (it did not process it).")),
    # The request may have been carried out: reconcile before any resend.
    "already_exists": (A, _("The provider says this message already exists; Loa is checking.")),
    "canceled": (A, _("The request was cancelled; Loa is checking whether it was sent.")),
    "deadline_exceeded": (A, _("The provider timed out; Loa is checking whether it was sent.")),
    "internal": (A, _("The provider had an internal error; Loa is checking whether it was sent.")),
    "unknown": (A, _("The provider had an unknown error; Loa is checking whether it was sent.")),
    "unavailable": (A, _("The provider is unavailable; Loa is checking whether it was sent.")),
    "dataloss": (A, _("The provider reported data loss; Loa is checking whether it was sent.")),
}

_ZALO_CODE_IN_TEXT = re.compile(r"(?<![\d-])(-1\d{2,3})(?!\d)")


def zalo_code_in_text(message: str) -> int | None:
    """The known Zalo error code an eTelecom envelope quotes in its text ("... -144 ..."), if any."""
    m = _ZALO_CODE_IN_TEXT.search(message or "")
    return int(m.group(1)) if m and int(m.group(1)) in ZALO_ERRORS else None


def classify_twirp(code: str, message: str = "", http_status: int | None = None) -> ErrorClass:
    """Class of an eTelecom error envelope. A Zalo code quoted in `msg` (eTelecom relays Zalo's
    refusals, [I] providers.md §1.3) wins: -118 is about the recipient whatever the envelope."""
    zalo_code = zalo_code_in_text(message)
    if zalo_code is not None:
        return ZALO_ERRORS[zalo_code][0]
    if code in TWIRP_CODES:
        return TWIRP_CODES[code][0]
    return classify_http_status(http_status) if http_status else A


def classify_http_status(status: int) -> ErrorClass:
    """Class of a bare HTTP status when the body says nothing we understand."""
    if status in (401, 403, 404, 405):
        return C
    if status in (408, 429):
        return R
    if status == 409:
        return A  # "conflict" on a send usually means "already have it": reconcile
    if status >= 500:
        return A
    if status >= 400:
        return C
    return A


# CodeResult table: v2 esms-api/bang-ma-loi.md (providers.md §2.4), every documented code.
# Classes: what is wrong with the account, OA, template or request shape is CONFIGURATION (the
# same for every recipient: pause and tell a human); what is wrong with one recipient is
# PERMANENT; "not yet"/"slow down" is RETRYABLE.
ESMS_CODES: dict[int, tuple[ErrorClass, str]] = {
    99: (P, _("eSMS: the phone number is blocked.")),
    101: (C, _("eSMS: wrong ApiKey or SecretKey.")),
    102: (C, _("eSMS: the account has no price list.")),
    103: (C, _("eSMS: insufficient balance; top up the account.")),
    104: (C, _("eSMS: brandname not found.")),
    105: (R, _("eSMS: message id not found yet.")),
    106: (C, _("eSMS: the recording file is missing.")),
    107: (C, _("eSMS: at least 30 distinct numbers are required.")),
    108: (P, _("eSMS: the phone number format is invalid.")),
    110: (P, _("eSMS: the request data is invalid.")),
    115: (P, _("eSMS: the hashed phone is invalid.")),
    118: (C, _("eSMS: message type not supported.")),
    120: (C, _("eSMS: too many phones in one request.")),
    # 124 at send time is success (see EsmsProvider.send); elsewhere it means "already have it".
    124: (A, _("eSMS: duplicate RequestId (already accepted).")),
    140: (C, _("eSMS: this server's IP address is not whitelisted at eSMS.")),
    143: (C, _("eSMS: the account is not activated or is locked.")),
    146: (C, _("eSMS: wrong customer-care template.")),
    160: (R, _("eSMS: request rate limit exceeded.")),
    163: (C, _("eSMS: only one phone per request.")),
    171: (P, _("eSMS: the code was already used or has expired.")),
    # The recipient's telco is not registered for this brandname: others still get it.
    177: (P, _("eSMS: the recipient's telco is not registered.")),
    199: (R, _("eSMS: a request is already being processed.")),
    201: (P, _("eSMS: the content has a blocked keyword.")),
    204: (C, _("eSMS: this Official Account is not registered at eSMS.")),
    210: (P, _("eSMS: the payload is invalid.")),
    300: (C, _("eSMS: SmsType is missing.")),
    301: (C, _("eSMS: service type not supported.")),
    687: (C, _("eSMS: more than 500 phones in one request.")),
    789: (C, _("eSMS: the template is not configured for this Official Account.")),
    790: (C, _("eSMS: wrong ZNS template.")),
    791: (C, _("eSMS: OAID or TempID missing.")),
    799: (C, _("eSMS: the Official Account is inactive, wrong, or not added to the account.")),
    801: (C, _("eSMS: over-quota mode cannot be scheduled.")),
    802: (C, _("eSMS: this Official Account may not use over-quota mode.")),
    851: (P, _("eSMS: message id missing.")),
    852: (P, _("eSMS: Zalo UID invalid.")),
    853: (P, _("eSMS: Zalo UID missing.")),
    854: (R, _("eSMS: no data found yet.")),
    # QueryZnsStatus ErrorInfo (not a CodeResult): "user not online within the allowed time".
    1001: (P, _("eSMS: the user was not online within the allowed time.")),
}


def classify_esms(code: int | str) -> tuple[ErrorClass, str]:
    """Class and meaning of a CodeResult. An undocumented code pauses the campaign (CONFIGURATION)
    rather than failing every recipient for a reason nobody understands."""
    try:
        icode = int(code)
    except (TypeError, ValueError):
        return C, _g("eSMS answered with an unknown code {code}.").format(code=code)
    if icode in ESMS_CODES:
        klass, text = ESMS_CODES[icode]
        return klass, str(text)
    return C, _g("eSMS answered with an unknown code {code}.").format(code=icode)


# Codes our adapters produce for conditions that are not a provider's error table.
# fetch_status: the provider said, in a documented answer, it has no record of the message
# (providers.base.StatusEvent.absent; the same value as providers.base.ABSENT).
NOT_FOUND = "not_found"

_GENERIC = {
    "connect_timeout": _("Could not connect to the provider: the request never reached it."),
    "connect_error": _("Could not connect to the provider: the request never reached it."),
    "tls_certificate": _("The provider's security certificate was refused: check the base URL."),
    "tls_error": _(
        "A secure-connection error broke the request; Loa is checking whether it was sent."
    ),
    "read_timeout": _("The provider did not answer in time; Loa is checking whether it was sent."),
    "connection_reset": _("The connection broke mid-request; Loa is checking whether it was sent."),
    "http_error": _("The request failed; Loa is checking whether it was sent."),
    "bad_response": _("The provider answered something Loa could not read; Loa is checking."),
    "http_400": _("The provider refused the request as invalid."),
    **dict.fromkeys(
        ["http_300", "http_301", "http_302", "http_303", "http_307", "http_308"],
        _(
            "The provider answered with a redirect, which Loa does not follow: check the "
            "account's base URL."
        ),
    ),
    "http_404": _("The provider does not know this address: check the base URL and paths."),
    "http_408": _("The provider timed out reading the request (it did not process it)."),
    "http_409": _("The provider says this message already exists; Loa is checking."),
    "http_422": _("The provider refused the message content."),
    "http_429": _("The provider asked us to slow down."),
    "http_500": _("The provider had a server error; Loa is checking whether it was sent."),
    "http_502": _("The provider had a server error; Loa is checking whether it was sent."),
    "http_503": _("The provider had a server error; Loa is checking whether it was sent."),
    "http_504": _("The provider had a server error; Loa is checking whether it was sent."),
    "http_401": _("The provider refused our credentials."),
    "http_403": _("The provider refused our credentials."),
    "missing_credentials": _("The provider account has no API key: enter it in the credentials."),
    "missing_base_url": _("The provider account has no base URL: enter the one from the vendor."),
    "bad_settings": _("The provider account's settings are invalid."),
    "bad_template_id": _("The template id must be a number for this provider."),
    "missing_channel": _("The channel has no provider channel id."),
    "missing_recipient": _("The message has no recipient address."),
    "missing_journey_id": _("Journey sending is on but this message has no journey id."),
    "unsupported_channel": _("This provider account cannot send on this kind of channel."),
    NOT_FOUND: _("The provider has no record of this message."),
    UNPROVEN: _(
        "Loa could not prove whether the provider received this message, so it is not sent "
        "again: a person decides (resend it, or leave it)."
    ),
    "etelecom_N": _("eTelecom marked the message as failed without a reason."),
    "esms_status_4": _("eSMS rejected the message."),
    "esms_status_5": _("eSMS reported the message as failed."),
    "esms_failed": _("eSMS reported the message as failed."),
    "mmp_fail": _("The provider reported the message as failed."),
    "opted_out": _("The contact opted out of this channel."),
    "invalid_params": _("The message parameters did not pass validation."),
    # campaigns.engine.reach: the channel does not reach the phone's country (providers/reach.py)
    "unreachable": _("This channel cannot reach the phone's country: nothing was sent."),
    "stuck": _("A worker stopped while sending; Loa is checking with the provider."),
    "adapter_error": _(
        "Loa hit an internal error while sending; it is checking with the provider."
    ),
}


def explain(code: str) -> str:
    """Human explanation for any stored error code (Zalo, eSMS, Twirp, HTTP); empty if unknown."""
    if not code:
        return ""
    try:
        icode = int(code)
    except ValueError:
        text = _GENERIC.get(code) or (TWIRP_CODES.get(code) or (None, ""))[1]
        return str(text) if text else ""
    if icode in ZALO_ERRORS:
        return str(ZALO_ERRORS[icode][1])
    if icode in ESMS_CODES:
        return str(ESMS_CODES[icode][1])
    return ""
