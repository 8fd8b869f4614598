"""A real HTTP client receiver for the status callbacks: a tiny http.server in a thread that
records every request and answers as the test tells it (200, 500, or too late: a timeout)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict
    body: bytes
    at: float

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """`script`: the answers to give, in order ("ok", an HTTP status int, or "slow" to answer
    after `slow_seconds`); once used up, every request gets 200."""

    script: list = field(default_factory=list)
    slow_seconds: float = 2.0
    received: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/loa-callbacks"

    def start(self) -> Receiver:
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = rec.script.pop(0) if rec.script else "ok"
                rec.received.append(Received(dict(self.headers.items()), body, time.time()))
                if answer == "slow":
                    time.sleep(rec.slow_seconds)
                    answer = 200
                code = 200 if answer == "ok" else int(answer)
                payload = b'{"ok":true}' if code < 300 else b'{"error":"boom"}'
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up waiting (the timeout test)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()


def verify(secret: str, got: Received, *, window: int = 300, now: float | None = None) -> bool:
    """The client's check, written out as docs/API.md tells clients (not through Loa's code):
    the timestamp within the window, then HMAC-SHA256 over timestamp + "." + raw body."""
    ts = got.headers.get("X-Loa-Timestamp", "")
    sig = got.headers.get("X-Loa-Signature", "")
    if not ts.isdigit() or abs((now or time.time()) - int(ts)) > window:
        return False
    mac = hmac.new(secret.encode(), ts.encode() + b"." + got.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest("v1=" + mac, sig)


def site_text(msgid: str) -> str:
    """`msgid` as the callback sender stores it: its threads write in the site's language
    (settings.LANGUAGE_CODE, Vietnamese), not the test's."""
    from django.conf import settings
    from django.utils import translation

    with translation.override(settings.LANGUAGE_CODE):
        return translation.gettext(msgid)
