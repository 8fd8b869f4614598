"""The fake's HTTP server: FakeProviders (start, stop, the base URL per provider kind) and the
request handler that parses a request, routes it by path prefix to the provider modules, counts
it, and injects the configured latency and errors."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from bench.fake_provider import esms, etelecom, mmp
from bench.fake_provider.shared import Reply, Request
from bench.fake_provider.state import FakeState

# Path prefix -> the provider module's handler, first match wins ("/esms-status/" before "/esms/").
ROUTES: tuple[tuple[str, Callable[[FakeState, Request], Reply]], ...] = (
    ("/esms-status/", esms.handle_status),
    ("/esms/", esms.handle),
    ("/etelecom/", etelecom.handle),
    ("/mmp/", mmp.handle),
)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


class FakeProviders(FakeState):
    """The fake server. Thread-safe; every knob may be changed while it runs."""

    _server: _Server | None = None

    # ---- lifecycle -----------------------------------------------------------------------------
    def start(self) -> FakeProviders:
        fake = self

        class Handler(_Handler):
            provider = fake

        self._server = _Server((self.host, self.port), Handler)
        self.port = self._server.server_address[1]
        serve = threading.Thread(target=self._server.serve_forever, name="fake-http", daemon=True)
        deliver = threading.Thread(target=self.deliver_loop, name="fake-callbacks", daemon=True)
        self._threads = [serve, deliver]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self.stop_delivering()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeProviders:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, provider: str, mode: str = "shop") -> str:
        """The base URL to put on a ProviderAccount of this kind."""
        return {
            "esms": f"{self.base_url}/esms/MainService.svc/json",
            "esms_status": f"{self.base_url}/esms-status",
            "etelecom": f"{self.base_url}/etelecom/v1/{mode}",
            "mmp": f"{self.base_url}/mmp",
            "vna_mmp": f"{self.base_url}/mmp",
            "metfone_mmp": f"{self.base_url}/mmp",
        }[provider]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    provider: FakeProviders  # set on the subclass made in start()
    server_version = "FakeProviders/1.0"

    def log_message(self, *args) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without TCP_NODELAY, Nagle plus the client's
        # delayed ACK add ~40 ms to every keep-alive response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- plumbing --
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _reply(self, status: int, body, headers: dict | None = None) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _reset(self) -> None:
        """Close with RST (SO_LINGER 0): the client sees 'connection reset by peer'."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True

    def _dispatch(self, method: str) -> None:
        fake = self.provider
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        path = split.path
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        malformed = False
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            # Each provider answers a body it cannot read in its own envelope (its module).
            body, malformed = {}, True
        if fake.latency_ms:
            time.sleep(fake.latency_ms / 1000.0)
        try:
            status, answer, provider, key = self._route(
                Request(
                    method=method,
                    path=path,
                    query=query,
                    body=body,
                    headers=self.headers,
                    malformed=malformed,
                )
            )
        except Exception as exc:  # a fake must answer, not die
            self._reply(500, {"error": f"fake crashed: {type(exc).__name__}: {exc}"})
            return
        fake.note(
            provider, key, path, method, dict(self.headers), body or query, self.client_address[1]
        )
        error = fake.pick_error() if provider else None
        if error and self._inject(error):
            return
        try:
            self._reply(status, answer)
        except OSError:
            self.close_connection = True

    def _inject(self, error: str) -> bool:
        """Answer with an injected error instead of the real reply (the request was processed);
        False for a kind it does not know, which gets the real reply."""
        if error == "reset":
            self._reset()
        elif error == "timeout":
            time.sleep(self.provider.hang_seconds)
            self._reset()
        elif error == "5xx":
            self._reply(500, {"code": "internal", "msg": "injected server error"})
        elif error == "429":
            self._reply(
                429, {"code": "resource_exhausted", "msg": "slow down"}, {"Retry-After": "0"}
            )
        else:
            return False
        return True

    def _route(self, request: Request) -> Reply:
        for prefix, handle in ROUTES:
            if request.path.startswith(prefix):
                return handle(self.provider, request)
        if request.path == "/health":
            return Reply(200, {"ok": True, "total": self.provider.total}, "", "")
        return Reply(404, {"error": "no such route"}, "", "")
