"""The sandbox adapter: no HTTP call, realistic ids, realistic outcomes.

It accepts every well-formed message with an id shaped like a Zalo msg_id, then decides (from a
hash of the idempotency key, so a re-run gives the same story) what will happen to it: most are
delivered, many read, a few fail with real Zalo codes. Those outcomes are queued in
`SandboxCallback` (providers/sandbox/outbox.py) as callback payloads, and the signal
`sandbox_callbacks_queued` asks the webhooks room to deliver them later through the same webhook
path a real provider's callbacks take, so the demo behaves like real life.
"""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy

from providers import reach as reach_
from providers.base import (
    BaseProvider,
    ErrorClass,
    EventStatus,
    OutboundMessage,
    ParsedWebhook,
    SendResult,
    StatusEvent,
    WebhookRejected,
    WebhookRequest,
)
from providers.sandbox.outbox import SandboxCallback
from providers.signals import sandbox_callbacks_queued

# Out of 1000: the shape of a typical ZNS campaign.
_FAIL_CODES = [
    (-118, "Zalo account not existed"),
    (-114, "User is inactive, or reject the message"),
    (-139, "User rejected this type of ZNS"),
    (-108, "Phone number is invalid"),
]


def _fate(key: str) -> tuple[str, int | None, str]:
    h = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 1000
    if h < 60:  # 6% fail
        code, text = _FAIL_CODES[h % len(_FAIL_CODES)]
        return "failed", code, text
    if h < 120:  # 6% stay "sent" (no receipt yet: phone off)
        return "sent", None, ""
    if h < 500:  # 38% delivered, not read
        return "delivered", None, ""
    return "read", None, ""  # 50% read


class SandboxProvider(BaseProvider):
    kind = "sandbox"
    label = gettext_lazy("Sandbox (no real sends)")
    channel_kinds = ("zalo_zns", "sms", "viber", "email")
    # The sandbox mirrors the real rules where they hold for every provider (Zalo reaches
    # Vietnam, Viber any country), so a demo never shows a send that a real channel would
    # refuse; its SMS imitates no operator: the countries Loa serves.
    reach = {
        "zalo_zns": reach_.ZALO,
        "sms": reach_.only("VN", "KH", source="the sandbox: the countries Loa serves"),
        "viber": reach_.INTERNATIONAL_APP,
        "email": reach_.EMAIL,
    }
    uses_http = False
    dedupes_idempotency_key = True
    dedupe_window_seconds = 10 * 365 * 86400
    default_settings = {"callback_delay_seconds": None}

    def __init__(self, config):
        super().__init__(config)
        self._lock = threading.Lock()
        self._outbox: list[dict] = []

    def after_batch(self) -> None:
        """Store this batch's future callbacks and say so: webhooks delivers them (its receiver of
        sandbox_callbacks_queued queues the pump)."""
        with self._lock:
            rows, self._outbox = self._outbox, []
        if not rows:
            return
        SandboxCallback.objects.bulk_create(
            [SandboxCallback(account_id=self.config.account_id, **row) for row in rows],
            batch_size=500,
        )
        sandbox_callbacks_queued.send(
            sender=type(self), account_id=self.config.account_id, count=len(rows)
        )

    def send(self, message: OutboundMessage) -> SendResult:
        if not message.phone:
            return SendResult.failed(ErrorClass.PERMANENT, -108, "Phone number is invalid")
        if not message.template_id and not message.content:
            return SendResult.failed(ErrorClass.CONFIGURATION, -109, "Template id is invalid")
        msg_id = hashlib.sha1(f"sbx:{message.idempotency_key}".encode()).hexdigest()
        fate, code, text = _fate(message.idempotency_key)
        delay = self.settings.get("callback_delay_seconds")
        if delay is None:
            delay = settings.LOA["SANDBOX_CALLBACK_DELAY"]
        now = timezone.now()
        steps = ["delivered", "read"] if fate == "read" else [fate]
        if fate == "sent":
            steps = []
        fee = str(message.price) if message.price else None
        # Collected in memory (send runs in the engine's thread pool) and written in after_batch().
        with self._lock:
            self._outbox.extend(
                dict(
                    due_at=now + timezone.timedelta(seconds=float(delay) * (i + 1)),
                    payload={
                        "msg_id": msg_id,
                        "tracking_id": message.idempotency_key,
                        "status": step,
                        "error": code if step == "failed" else 0,
                        "message": text if step == "failed" else "Success",
                        "timestamp": int((now.timestamp() + float(delay) * (i + 1)) * 1000),
                        # What the template costs (Template.price), as a real provider would
                        # charge it on delivery; nothing when Loa knows no price.
                        "fee": fee if step == "delivered" else None,
                    },
                )
                for i, step in enumerate(steps)
            )
        return SendResult.accepted(
            msg_id, raw={"error": 0, "message": "Success", "data": {"msg_id": msg_id}}
        )

    def parse_webhook(self, request: WebhookRequest) -> ParsedWebhook:
        try:
            data = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError) as exc:
            raise WebhookRejected("Body is not JSON") from exc
        if not isinstance(data, dict) or "msg_id" not in data or "status" not in data:
            raise WebhookRejected("Expected an object with msg_id and status")
        status = {s.value: s for s in EventStatus}.get(str(data["status"]), EventStatus.UNKNOWN)
        ts = data.get("timestamp")
        occurred = None
        if isinstance(ts, int | float):
            occurred = datetime.fromtimestamp(ts / 1000, tz=UTC)
        fee = data.get("fee")
        try:
            fee = Decimal(str(fee)) if fee not in (None, "") else None
        except InvalidOperation:
            fee = None
        event = StatusEvent(
            status=status,
            provider_message_id=str(data["msg_id"]),
            idempotency_key=str(data.get("tracking_id") or ""),
            occurred_at=occurred,
            error_code=str(data.get("error") or "") if status == EventStatus.FAILED else "",
            error_message=str(data.get("message") or "") if status == EventStatus.FAILED else "",
            fee=fee,
            raw=data,
        )
        return ParsedWebhook(statuses=[event], dedupe_key=f"{data['msg_id']}:{data['status']}")

    def fetch_status(
        self,
        *,
        provider_message_id: str,
        idempotency_key: str,
        oa_id: str = "",
        channel_kind: str = "",
    ) -> StatusEvent | None:
        fate, code, text = _fate(idempotency_key)
        if fate == "sent":
            return StatusEvent(
                EventStatus.SENT,
                provider_message_id=provider_message_id,
                idempotency_key=idempotency_key,
            )
        return StatusEvent(
            EventStatus(fate),
            provider_message_id=provider_message_id,
            idempotency_key=idempotency_key,
            error_code=str(code or "") if fate == "failed" else "",
            error_message=text,
        )

    def test_connection(self) -> str:
        return "The sandbox is always reachable; it sends nothing to real phones."

    def list_official_accounts(self) -> list[dict]:
        return [
            {
                "oa_id": "4097311281936189049",
                "name": "Loa Demo OA",
                "daily_quota": 5000,
                "remaining_quota": 5000,
                "quality": "HIGH",
            }
        ]
