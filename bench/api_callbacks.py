"""Status callbacks to API clients: what the engine's hook costs the status applier, and how fast
the pump delivers signed callbacks to a client.

    python bench/api_callbacks.py --database-url postgres://postgres@127.0.0.1:5432/loa_bench
    python bench/api_callbacks.py --messages 500

1. The applier (campaigns.engine.delivery.messages_apply_events, what the webhook path runs):
   `delivered` for M campaign messages, then for M API messages whose application has a callback
   URL, in batches of 1,000 as the webhook applier takes them; and the same API messages with the
   hook disconnected. The last difference is the hook: the origin lookup, one SELECT of the API
   messages and one INSERT of the outbox rows per batch. (API messages cost the applier more than
   a campaign's in any case: each is its own campaign, whose counters are one UPDATE each.)
2. The pump (campaigns.api.callbacks.services.callbacks_send_due, 100 a batch, 8 concurrent):
   the M queued callbacks POSTed, signed, to a client on the same machine (a ThreadingHTTPServer
   in its own process answering 200), until none is left; every one delivered is checked.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as `python bench/api_callbacks.py`: the project importable

from bench import _common as common  # noqa: E402 (after the path above)

BATCH = 1000
_TAGS = iter(range(1, 10))


def _serve(port: int) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def _messages(n: int, *, api_app=None):
    """n messages in `sent`, each in its own one-recipient API campaign (as POST /messages makes
    them) when api_app is given, else all in one ordinary campaign. Returns their ids."""
    from campaigns.api.models import ApiMessage
    from campaigns.models import Campaign, Contact, Message
    from providers.models import Channel

    channel = Channel.objects.first()
    stamp = time.time_ns() % 1000
    tag = next(_TAGS)  # the sets never share a phone
    contacts = Contact.objects.bulk_create(
        [Contact(phone=f"849{tag}{stamp:03d}{i:04d}") for i in range(n)]
    )
    if api_app is None:
        camp = Campaign.objects.create(name=f"bench campaign {stamp}", channel=channel)
        msgs = Message.objects.bulk_create(
            [
                Message(
                    campaign=camp,
                    contact=c,
                    phone=c.phone,
                    idempotency_key=f"b{camp.pk}-{c.pk}",
                    status="sent",
                )
                for c in contacts
            ]
        )
        return [m.pk for m in msgs]
    camps = Campaign.objects.bulk_create(
        [Campaign(name=f"API bench {i}", channel=channel, origin="api") for i in range(n)]
    )
    msgs = Message.objects.bulk_create(
        [
            Message(
                campaign=cp,
                contact=c,
                phone=c.phone,
                idempotency_key=f"b{cp.pk}-{c.pk}",
                status="sent",
            )
            for cp, c in zip(camps, contacts, strict=True)
        ]
    )
    ApiMessage.objects.bulk_create(
        [
            ApiMessage(application=api_app, campaign=cp, message=m, client_reference=f"R{m.pk}")
            for cp, m in zip(camps, msgs, strict=True)
        ]
    )
    return [m.pk for m in msgs]


def _apply(ids: list[int]) -> float:
    from campaigns.engine.delivery import messages_apply_events
    from providers.base import EventStatus, StatusEvent

    started = time.perf_counter()
    for i in range(0, len(ids), BATCH):
        messages_apply_events(
            items=[(mid, StatusEvent(status=EventStatus.DELIVERED)) for mid in ids[i : i + BATCH]]
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=2000, help="at most 9,999")
    parser.add_argument("--quick", action="store_true", help="500 messages")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    args = parser.parse_args()
    n = 500 if args.quick else args.messages
    env = dict(os.environ, DEBUG="false", LOA_ALLOW_HTTP_PROVIDER_URLS="true")
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    print(
        f"database: {env.get('DATABASE_URL', 'sqlite (default)').split('@')[-1]}"
        f"  cpus: {os.cpu_count()}  load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    common.setup_django(env)
    common.migrate_and_clear_queue()
    common.machine_speed()

    from bench._fixtures import setup_channel
    from campaigns.api.callbacks.services import callbacks_send_due
    from campaigns.api.models import ApiApplication, CallbackDelivery

    port = common.free_port()
    server = mp.get_context("spawn").Process(target=_serve, args=(port,), daemon=True)
    server.start()
    common.wait_for_port(port, tries=50, pause=0.1)
    setup_channel("http://127.0.0.1:1")
    app = ApiApplication(
        name=f"bench app {time.time_ns()}", callback_url=f"http://127.0.0.1:{port}/cb"
    )
    app.callback_secret = "bench-secret"
    app.save()

    from campaigns.engine.signals import message_statuses_changed

    campaign_s = _apply(_messages(n))
    # API messages with the hook disconnected: what one campaign per message costs the applier
    # by itself (each campaign's counters are one UPDATE), without the callbacks.
    receivers = message_statuses_changed.receivers[:]
    message_statuses_changed.receivers.clear()
    message_statuses_changed.sender_receivers_cache.clear()
    try:
        bare_s = _apply(_messages(n, api_app=app))
    finally:
        message_statuses_changed.receivers[:] = receivers
        message_statuses_changed.sender_receivers_cache.clear()
    CallbackDelivery.objects.all().delete()
    before = CallbackDelivery.objects.count()
    api_s = _apply(_messages(n, api_app=app))
    queued = CallbackDelivery.objects.count() - before

    def per_k(seconds: float) -> float:  # milliseconds per 1,000 messages
        return round(seconds * 1000 / n * 1000, 1)

    common.figure("applier_campaign_ms_per_1000", per_k(campaign_s), "ms", messages=n)
    common.figure("applier_api_without_hook_ms_per_1000", per_k(bare_s), "ms", messages=n)
    common.figure(
        "applier_api_with_callbacks_ms_per_1000",
        per_k(api_s),
        "ms",
        messages=n,
        outbox_rows=queued,
    )

    started = time.perf_counter()
    delivered = 0
    while True:
        report = callbacks_send_due()
        delivered += report.delivered
        if not (report.delivered or report.failed or report.given_up):
            break
    took = time.perf_counter() - started
    left = CallbackDelivery.objects.filter(application=app, delivered_at__isnull=True).count()
    common.figure(
        "callbacks_delivered_per_s",
        round(delivered / took, 1),
        "/s",
        "-",
        None,
        delivered=delivered,
        not_delivered=left,
    )
    server.terminate()


if __name__ == "__main__":
    main()
