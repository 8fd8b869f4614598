"""Provider facts a fallback chain needs (issue 19): which error codes mean "this channel cannot
reach this person" (so the next step of a chain may try another channel), and which channels
send delivery receipts (so "no receipt within N minutes" can mean anything at all).

The engine never names a code: it asks `cannot_reach(provider_kind, channel_kind, code)` and
`sends_receipts(provider_kind, channel_kind)` (campaigns/engine/fallback.py). Every row carries
its source; "assumed" where the seeds are silent. docs/PROVIDERS.md "Fallback" is the same table
for people.

Never listed here: a code another attempt on the same channel could fix (Zalo -100, quotas -144
-147 -160, the night window -133, eSMS 105/160/199: those are RETRYABLE or DEFERRED in
providers.errors and never trigger a fallback), and a code that is about our configuration (bad
token, unknown OA or template: the campaign pauses instead, for every recipient alike).

An account may add codes without a code change, in its settings JSON:
`{"fallback_codes": ["E123", "456"]}` (an MMP platform's own vendor codes: the MMP seeds document
no error table, so none is listed for it by default).
"""

from __future__ import annotations

from dataclasses import dataclass

# The account setting that adds codes (strings, as Message.error_code stores them).
SETTING = "fallback_codes"


@dataclass(frozen=True)
class Code:
    code: str  # as the adapter stores it in Message.error_code
    meaning: str  # for people (docs, the admin's help)
    source: str
    assumed: bool = False


# Zalo ZNS codes: eTelecom passes Zalo's code in `error_code` (send answer, GetMessage,
# callbacks), eSMS in the callback's `error_info.error`; both adapters store it as "-118".
# Source: providers.md §4.5 (Zalo's error appendix via go-zns-wrapper errcode.go and zalo.cloud
# "handle error code"): "[I] permanent per-recipient: -108, -114, -118, -119, -139, -141".
_ZALO_SOURCE = "providers.md §4.5 (Zalo error appendix; [I] permanent per-recipient)"
ZALO_UNREACHABLE: tuple[Code, ...] = (
    Code("-108", "phone invalid for Zalo", _ZALO_SOURCE),
    Code("-114", "user inactive, refused, outdated app", _ZALO_SOURCE),
    Code("-118", "the phone has no Zalo account", _ZALO_SOURCE),
    Code("-119", "the Zalo account cannot receive messages", "providers.md §4.5 (Zalo appendix)"),
    Code("-139", "the user refused this type of ZNS", _ZALO_SOURCE),
    Code("-141", "the user refused ZNS from this OA (blocked)", _ZALO_SOURCE),
    # Consent/eligibility codes: listed by the appendix, not in its per-recipient line; that
    # another channel may reach this person is our reading (assumed).
    Code("-110", "the user's Zalo version is too old", "providers.md §4.5", assumed=True),
    Code("-134", "the user has not opted in (consent)", "providers.md §4.5", assumed=True),
    Code(
        "-140",
        "the OA may not send follow-up messages to this user",
        "providers.md §4.5",
        assumed=True,
    ),
)

# eSMS CodeResult (send answer) and QueryZnsStatus ErrorInfo: providers.md §2.4 (esms-api
# bang-ma-loi.md) and §2.6.
ESMS_UNREACHABLE: tuple[Code, ...] = (
    Code("99", "the phone is blocked at eSMS", "providers.md §2.4 (bang-ma-loi: 99)"),
    Code("108", "the phone format is invalid", "providers.md §2.4 (bang-ma-loi: 108)"),
    Code(
        "177",
        "the recipient's telco is not registered for the brandname",
        "providers.md §2.4 (bang-ma-loi: 177)",
    ),
    Code(
        "1001",
        "the Zalo user was not online within the allowed time",
        "providers.md §2.6 (QueryZnsStatus ErrorInfo 1001)",
    ),
)

# The sandbox speaks Zalo's codes (providers/sandbox/adapter.py fails with -118 and friends).
_TABLES: dict[str, tuple[Code, ...]] = {
    "etelecom": ZALO_UNREACHABLE,
    "esms": ZALO_UNREACHABLE + ESMS_UNREACHABLE,
    "sandbox": ZALO_UNREACHABLE,
    # VNA/Metfone MMP: the seeds (000, 001) document no per-recipient error codes; a failure is
    # stored as "mmp_fail" or the vendor code mapped in the account's settings. Assumed: none is
    # a "cannot reach" code until the account lists them in settings["fallback_codes"].
    "vna_mmp": (),
    "metfone_mmp": (),
}

# Who sends delivery receipts, per (provider kind, channel kind): without receipts "no receipt
# within N minutes" would fall back for everyone, so a chain never waits on such a step.
_RECEIPTS: dict[str, dict[str, str]] = {
    # eTelecom: GetMessage/ListMessages status + the forwarded user_received_message (§1.3, §4.6).
    "etelecom": {"zalo_zns": "providers.md §1.3, §4.6"},
    # eSMS: the CallbackUrl GET with SendStatus, for ZNS and SMS alike (§2.5).
    "esms": {"zalo_zns": "providers.md §2.5", "sms": "providers.md §2.5"},
    # MMP: seeds 000/001 document the broadcast status webhook (DELIVERED, READ) for every
    # channel kind the platform sends; email receipts are assumed the same.
    "vna_mmp": {"*": "seeds 000/001 (broadcast status webhook); email assumed"},
    "metfone_mmp": {"*": "seeds 000/001 (broadcast status webhook); email assumed"},
    "sandbox": {"*": "providers/sandbox (simulated callbacks)"},
}


def unreachable_codes(provider_kind: str, account_settings: dict | None = None) -> frozenset[str]:
    """Every error code that means "this channel cannot reach this person" for a provider,
    with the account's settings["fallback_codes"] added (non-strings ignored)."""
    codes = {c.code for c in _TABLES.get(provider_kind, ())}
    extra = (account_settings or {}).get(SETTING)
    if isinstance(extra, list):
        codes.update(str(c).strip() for c in extra if isinstance(c, str | int) and str(c).strip())
    return frozenset(codes)


def cannot_reach(provider_kind: str, code: str, account_settings: dict | None = None) -> bool:
    """Does this stored error code mean the channel cannot reach this person?"""
    return bool(code) and str(code) in unreachable_codes(provider_kind, account_settings)


def sends_receipts(provider_kind: str, channel_kind: str) -> bool:
    """Does this provider send delivery receipts for this channel kind?"""
    table = _RECEIPTS.get(provider_kind, {})
    return channel_kind in table or "*" in table


def codes_table(provider_kind: str) -> tuple[Code, ...]:
    """The declared rows for one provider (docs and the admin's help)."""
    return _TABLES.get(provider_kind, ())


# Provider-native fallback (one request, the provider falls to SMS itself): which provider and
# channel kind offers it. Built from the reference notes (providers.md §1.2 eTelecom
# enable_sms_on_zns_failure + its `sms{...}` answer block; §2.3 eSMS MultiChannelMessage with
# Channels ["zalo","sms"]), not from the seeds. A chain step in provider mode uses it
# (campaigns/engine/native.py, .legs); docs/PROVIDERS.md "Fallback" says what is assumed.
NATIVE_FALLBACK: dict[str, str] = {
    "etelecom": "providers.md §1.2: enable_sms_on_zns_failure, answer block sms{...}",
    "esms": 'providers.md §2.3: MultiChannelMessage, Channels ["zalo","sms"]',
}
