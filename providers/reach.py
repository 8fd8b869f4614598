"""Who a channel reaches: the countries whose phones a provider's channel kind can deliver to.

Each adapter declares its own table, `reach = {channel_kind: Reach}` (providers/base.py,
`BaseProvider.reach`), with the source of every row; docs/PROVIDERS.md "Who a channel reaches"
is the same table for people. An account may override a row without a code change, in its
settings JSON: `{"reach": {"sms": ["KH", "VN"]}}` (region codes; `"*"` for any country). A
malformed override is refused when the account is saved (ProviderAccount.clean, with
`reach_override_errors`) and ignored at send time: the declared row applies.

The campaign engine checks every recipient against it before anything is sent
(campaigns/engine/reach.py): whoever a channel cannot reach is excluded with the reason, never
sent, never charged.

The test is the phone's calling code, a prefix of the stored digits (84... Vietnam, 855...
Cambodia): a `str.startswith` per recipient, and the same prefixes as SQL `LIKE 'code%'`, so the
per-row check and the set-based one cannot disagree. A country that shares its calling code
(+1 United States/Canada, +7 Russia/Kazakhstan) reaches every country of that code: a limit of
the prefix test that the two served countries (their codes are their own) never meet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from providers.shared.phones import CALLING_CODES

# Names of the served countries in sentences ("cannot be reached on this channel (Cambodia)");
# other regions are shown by their code.
COUNTRY_NAMES = {"VN": _("Vietnam"), "KH": _("Cambodia")}
# The account setting that overrides a row, and its "any country" value.
SETTING = "reach"
ANY = "*"


def country_name(region: str) -> str:
    """Vietnam, Cambodia, another region's code, or "unknown country" for ""."""
    if not region:
        return gettext("unknown country")
    return str(COUNTRY_NAMES.get(region, region))


def calling_code(region: str) -> str:
    """The calling code a region's phones are stored under ("" for an unknown region)."""
    code = CALLING_CODES.get(region)
    if code:
        return code
    number = phonenumbers.country_code_for_region(region)
    return str(number) if number else ""


@dataclass(frozen=True)
class Reach:
    """The countries one channel kind of one provider reaches, and where that comes from.

    `countries` None: any country. `source` is for people (a seed, a line of providers.md, or
    "assumed ..."); `assumed` says the seeds are silent about it."""

    countries: frozenset[str] | None
    source: str
    assumed: bool = False
    # Calling-code prefixes of `countries` (None: any): what the per-row check compares.
    prefixes: tuple[str, ...] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        prefixes = None
        if self.countries is not None:
            prefixes = tuple(sorted({c for c in map(calling_code, self.countries) if c}))
        object.__setattr__(self, "prefixes", prefixes)

    @property
    def limited(self) -> bool:
        return self.countries is not None

    def reaches(self, phone: str) -> bool:
        """Can this channel reach this stored phone (digits with the calling code)?"""
        return self.prefixes is None or phone.startswith(self.prefixes)

    def countries_text(self) -> str:
        """The countries for sentences: "Vietnam", "Cambodia, Vietnam" or "any country"."""
        if self.countries is None:
            return gettext("any country")
        return ", ".join(sorted(country_name(c) for c in self.countries))


def unreachable_reason(reach: Reach, country: str) -> str:
    """Why a phone is left out (a campaign's message row) or refused (a test send)."""
    return gettext("cannot be reached on this channel ({country}): it reaches {reach} only").format(
        country=country_name(country), reach=reach.countries_text()
    )


def only(*countries: str, source: str, assumed: bool = False) -> Reach:
    return Reach(frozenset(countries), source=source, assumed=assumed)


def anywhere(source: str, *, assumed: bool = False) -> Reach:
    return Reach(None, source=source, assumed=assumed)


# The rows several adapters share, each with its source (docs/PROVIDERS.md repeats them).
ZALO = only(
    "VN",
    source="Zalo is Vietnam's; providers.md §4.3: ZNS phones are 84 + 9 digits",
)
INTERNATIONAL_APP = anywhere(
    "assumed: an international app; the seeds say nothing of countries", assumed=True
)
EMAIL = anywhere("an email address, not a phone: reach is having one (campaigns.engine.validation)")
# A kind an adapter does not declare: nothing is excluded (tests/engine/test_reach.py makes sure
# every declared channel kind has its row).
UNDECLARED = anywhere("not declared")


def reach_override_errors(value: Any) -> list[str]:
    """What is wrong with an account's settings["reach"], in words ([] when fine or absent)."""
    if value is None:
        return []
    if not isinstance(value, dict):
        return [gettext('"reach" must be an object, like {"sms": ["KH", "VN"]}.')]
    errors = []
    for kind, countries in value.items():
        if countries == ANY:
            continue
        if not isinstance(countries, list) or not all(isinstance(c, str) for c in countries):
            errors.append(
                gettext('"reach" of {kind} must be a list of country codes or "*".').format(
                    kind=kind
                )
            )
            continue
        unknown = [c for c in countries if not calling_code(c.upper())]
        if unknown:
            errors.append(
                gettext('"reach" of {kind}: unknown country code(s) {codes}.').format(
                    kind=kind, codes=", ".join(unknown)
                )
            )
    return errors


def resolve(declared: dict[str, Reach], channel_kind: str, settings: dict | None) -> Reach:
    """The reach of one channel kind: the account's override when it is well-formed, else the
    adapter's declared row, else UNDECLARED."""
    base = declared.get(channel_kind, UNDECLARED)
    overrides = (settings or {}).get(SETTING) if isinstance(settings, dict) else None
    if not isinstance(overrides, dict) or channel_kind not in overrides:
        return base
    if reach_override_errors({channel_kind: overrides[channel_kind]}):
        return base
    value = overrides[channel_kind]
    source = 'the account\'s settings ("reach")'
    if value == ANY:
        return anywhere(source)
    return Reach(frozenset(_upper(value)), source=source)


def _upper(codes: Iterable[str]) -> list[str]:
    return [c.strip().upper() for c in codes]
