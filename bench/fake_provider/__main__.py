"""The fake provider server's command line, run from the project root:

    python -m bench.fake_provider --port 9100 --latency-ms 50 --error-rate 0

It prints each provider kind's base URL, then every 5 s the requests and callbacks so far,
until Ctrl-C."""

from __future__ import annotations

import argparse
import time

import bench.fake_provider
from bench.fake_provider.server import FakeProviders
from bench.fake_provider.state import ERROR_KINDS


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fake_provider",
        description=bench.fake_provider.__doc__.split("\n\n")[0],
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0, help="0..1, share of failed calls")
    parser.add_argument("--error-kinds", default=",".join(ERROR_KINDS), help="5xx,timeout,reset")
    parser.add_argument(
        "--hang-seconds", type=float, default=30.0, help="how long a 'timeout' hangs"
    )
    parser.add_argument(
        "--fail-rate", type=float, default=0.0, help="share of messages that fail (-118)"
    )
    parser.add_argument("--callback-delay", type=float, default=1.0)
    parser.add_argument("--no-callbacks", action="store_true")
    parser.add_argument("--etelecom-webhook", default="", help="URL for eTelecom callbacks")
    parser.add_argument("--mmp-webhook", default="", help="URL for MMP status callbacks")
    parser.add_argument("--etelecom-callback", choices=("message", "zalo"), default="message")
    parser.add_argument(
        "--daily-quota", type=int, default=None, help="eTelecom sends per day before -144"
    )
    args = parser.parse_args(argv)
    fake = FakeProviders(
        host=args.host,
        port=args.port,
        latency_ms=args.latency_ms,
        error_rate=args.error_rate,
        error_kinds=tuple(k for k in args.error_kinds.split(",") if k),
        hang_seconds=args.hang_seconds,
        fail_rate=args.fail_rate,
        callback_delay=args.callback_delay,
        callbacks=not args.no_callbacks,
        callback_urls={"etelecom": args.etelecom_webhook, "mmp": args.mmp_webhook},
        etelecom_callback=args.etelecom_callback,
        daily_quota=args.daily_quota,
    ).start()
    print(f"fake providers on {fake.base_url}")
    for kind in ("esms", "esms_status", "etelecom", "mmp"):
        print(f"  {kind:12s} base URL: {fake.url(kind)}")
    print("  (eSMS status_base_url setting = the esms_status URL)")
    try:
        while True:
            time.sleep(5)
            print(
                f"  {fake.total} requests, {fake.callbacks_sent} callbacks sent, {fake.callback_errors} failed",
                flush=True,
            )
            with fake.lock:
                refusals = sorted(fake.refusals.items())
            if refusals:
                # Why requests were refused for breaking the contract (state.py: refusals).
                print("  refused: " + ", ".join(f"{p} {rule} x{n}" for (p, rule), n in refusals))
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
