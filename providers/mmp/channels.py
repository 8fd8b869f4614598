"""MMP channels for the admin (issue 16): Zalo consent (Check Zalo Channel Consent Status, Send
Consent request) and a channel's information and status (Get channel information, Get Channel
Status), read into small typed answers the admin shows.

Seed 000 names the operations and their schemas (ZaloCheckConsentResponse,
ZaloRequestConsentResponse, ResponseChannelInfo, ChannelResponse, CommonGetChannelStatusResponse,
ChannelStatus) and shows none of their fields: where a value is read and what it means are the
assumptions of providers/mmp/assumed.py (`responses.consent_status`, `responses.channel_*`,
`consent_states`), overridable per account. Whatever the answer holds is also shown as the
provider wrote it (`fields`), so a person can judge an answer Loa does not understand.
A mixin of MmpProvider.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from providers.mmp.bodies import pluck

MAX_FIELDS = 40


def flat_fields(data: Any, *, limit: int = MAX_FIELDS) -> list[tuple[str, str]]:
    """An answer as (dotted key, text) rows, for a table a person reads; at most `limit` rows."""
    rows: list[tuple[str, str]] = []

    def walk(node: Any, prefix: str) -> None:
        if len(rows) >= limit:
            return
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(value, f"{prefix}.{key}" if prefix else str(key))
        elif isinstance(node, list) and node and all(isinstance(v, dict) for v in node):
            for i, value in enumerate(node):
                walk(value, f"{prefix}.{i}" if prefix else str(i))
        else:
            text = node if isinstance(node, str) else json.dumps(node, ensure_ascii=False)
            rows.append((prefix or "-", text[:500]))

    walk(data, "")
    return rows[:limit]


def _scalar(value: Any) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class ConsentAnswer:
    """What the provider said about one phone's Zalo consent on a channel."""

    phone: str
    state: str | None  # granted, not_granted, requested; None: not understood
    provider_value: str  # the consent value as the provider wrote it ("" if none found)
    fields: list[tuple[str, str]] = field(default_factory=list)
    raw: Any = None


@dataclass(frozen=True)
class ChannelFacts:
    """What the provider said about a channel: its name and status where Loa found them, and
    every field of the answer."""

    name: str
    status: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    raw: Any = None


class MmpChannelsMixin:
    def zalo_consent(self, *, channel_id: str, phone: str, request: bool = False) -> ConsentAnswer:
        """Check Zalo Channel Consent Status, or (request=True) Send Consent request."""
        if request:
            data = self.request_zalo_consent(channel_id=channel_id, phone=phone)
        else:
            data = self.check_zalo_consent(channel_id=channel_id, phone=phone)
        return self.consent_answer(data, phone=phone)

    def consent_answer(self, data: Any, *, phone: str) -> ConsentAnswer:
        responses = self.settings.get("responses") or {}
        value = _scalar(pluck(data, responses.get("consent_status", [])))
        table = {str(k).upper(): v for k, v in (self.settings.get("consent_states") or {}).items()}
        state = table.get(value.strip().upper().replace(" ", "_")) if value else None
        return ConsentAnswer(
            phone=phone, state=state, provider_value=value, fields=flat_fields(data), raw=data
        )

    def channel_facts(self, data: Any) -> ChannelFacts:
        """ResponseChannelInfo / ChannelResponse / CommonGetChannelStatusResponse, read."""
        responses = self.settings.get("responses") or {}
        return ChannelFacts(
            name=_scalar(pluck(data, responses.get("channel_name", []))),
            status=_scalar(pluck(data, responses.get("channel_status", []))),
            fields=flat_fields(data),
            raw=data,
        )
