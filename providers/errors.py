"""Zalo ZNS error codes: their class for the engine and their meaning for the marketer.

Source: providers.md §4.5 (Zalo's error appendix via go-zns-wrapper errcode.go, zalo-otp
ZaloErrorCode.php and zalo.cloud "handle error code"). eTelecom and eSMS pass these codes through
(eTelecom `error_code`, eSMS `error_info.error`), so every adapter classifies with this one table.
"""

from django.utils.translation import gettext_lazy as _

from providers.base import ErrorClass

R, A, D, P, C = (
    ErrorClass.RETRYABLE,
    ErrorClass.AMBIGUOUS,
    ErrorClass.DEFERRED,
    ErrorClass.PERMANENT,
    ErrorClass.CONFIGURATION,
)

# code -> (class, explanation shown to marketers; translated)
ZALO_ERRORS: dict[int, tuple[ErrorClass, str]] = {
    -100: (R, _("Zalo had an unknown error; the message will be retried.")),
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
    -121: (P, _("The request body was empty.")),
    -122: (P, _("The request body format is invalid.")),
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


def explain(code: str) -> str:
    """Human explanation for any stored error code (Zalo, eSMS, HTTP); empty when unknown."""
    if not code:
        return ""
    try:
        icode = int(code)
    except ValueError:
        return str(_GENERIC.get(code, ""))
    if icode in ZALO_ERRORS:
        return str(ZALO_ERRORS[icode][1])
    from providers.esms import ESMS_CODES  # local: avoid an import cycle at module load

    if icode in ESMS_CODES:
        return str(ESMS_CODES[icode][1])
    return ""


_GENERIC = {
    "connect_timeout": _("Could not connect to the provider; the message will be retried."),
    "connect_error": _("Could not connect to the provider; the message will be retried."),
    "read_timeout": _("The provider did not answer in time; Loa is checking whether it was sent."),
    "connection_reset": _("The connection broke mid-request; Loa is checking whether it was sent."),
    "http_429": _("The provider asked us to slow down."),
    "http_500": _("The provider had a server error; Loa is checking whether it was sent."),
    "http_502": _("The provider had a server error; Loa is checking whether it was sent."),
    "http_503": _("The provider had a server error; Loa is checking whether it was sent."),
    "http_401": _("The provider refused our credentials."),
    "http_403": _("The provider refused our credentials."),
    "opted_out": _("The contact opted out of this channel."),
    "invalid_params": _("The message parameters did not pass validation."),
    "stuck": _("A worker stopped while sending; Loa is checking with the provider."),
}
