"""A local fake of every provider's HTTP API, for development, tests and benchmarks.

One threaded HTTP/1.1 (keep-alive) server on 127.0.0.1 speaks, under path prefixes:

  /esms/MainService.svc/json/...   eSMS: SendZaloMessage_V4_post_json, SendZaloMessage_V6,
                                   QueryZnsStatus, GetTemplate, GetZnsTemplateInfo, ZNS/GetListZOA,
                                   ZNS/GetQuota (providers.md §2)
  /esms-status/ZaloCallback/GetCallback   eSMS's callback replay host (status-sms.esms.vn)
  /etelecom/v1/{shop,partner}.Zalo/...    eTelecom: SendZNS, SendZNSJourney, GetMessage,
                                   ListMessages, ListTemplates, ListOA, UpdateShopOA (providers.md §1)
  /mmp/api/v1/...                  VNA/Metfone MMP at the paths Loa assumes (providers/mmp.py)

with configurable latency, an error rate (HTTP 500, hangs that the client sees as timeouts,
connection resets), an OA daily quota for eTelecom sends (Zalo's -144 once it is used up, until
new_day()), a count of calls per idempotency key (eSMS RequestId, eTelecom tracking_id,
MMP clientMessageId) so tests can prove "exactly one provider call per contact", and callbacks
in each provider's documented format delivered after a delay (eSMS: GET on the CallbackUrl of the
send; eTelecom: POST of the message object or of Zalo's user_received_message; MMP: POST of the
broadcast status payload, DELIVERED then READ).

Errors are injected *after* the request was processed (the message exists, the callback will
come): the worst case for a client, which must then reconcile rather than resend.

Use it from tests:

    with FakeProviders(latency_ms=0) as fake:
        account.base_url = fake.url("esms") ...

or from a shell:  python bench/fake_provider.py --port 9100 --latency-ms 50 --error-rate 0
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import random
import socket
import struct
import threading
import time
import uuid
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import requests

ERROR_KINDS = ("5xx", "timeout", "reset")
OA_ID = "4097311281936189049"
TEMPLATES = {
    "205644": {
        "name": "Xác nhận đơn hàng",
        "params": [("customer_name", "type_text", 30), ("order_code", "type_text", 30)],
    }
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


class FakeProviders:
    """The fake server. Thread-safe; every knob may be changed while it runs."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0.0,
        error_rate: float = 0.0,
        error_kinds: tuple[str, ...] = ERROR_KINDS,
        hang_seconds: float = 30.0,
        fail_rate: float = 0.0,
        callback_delay: float = 0.2,
        callbacks: bool = True,
        callback_urls: dict[str, str] | None = None,
        etelecom_callback: str = "message",  # "message" (zl_oa_message) or "zalo"
        daily_quota: int | None = None,
        seed: int | None = None,
    ):
        self.host = host
        self.port = port
        self.latency_ms = latency_ms
        self.error_rate = error_rate
        self.error_kinds = tuple(error_kinds)
        self.hang_seconds = hang_seconds
        self.fail_rate = fail_rate
        self.callback_delay = callback_delay
        self.callbacks = callbacks
        self.callback_urls = dict(callback_urls or {})
        self.etelecom_callback = etelecom_callback
        # The OA's daily ZNS quota (eTelecom sends): past it, Zalo's -144 until new_day().
        self.daily_quota = daily_quota
        self.quota_used = 0
        self.accepted_by_key: Counter[tuple[str, str]] = Counter()
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.calls_by_key: Counter[tuple[str, str]] = Counter()
        self.requests: deque[dict] = deque(maxlen=20_000)
        self.forced: deque[str] = deque()
        self.messages: dict[str, dict] = {}  # by provider message id
        self.by_key: dict[tuple[str, str], str] = {}  # (provider, key) -> provider message id
        self.callbacks_sent = 0
        self.callback_errors = 0
        self.total = 0
        self._seq = itertools.count(1)
        self._heap: list[tuple[float, int, dict]] = []
        self._heap_cv = threading.Condition()
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # ---- lifecycle -----------------------------------------------------------------------------
    def start(self) -> FakeProviders:
        fake = self

        class Handler(_Handler):
            provider = fake

        self._server = _Server((self.host, self.port), Handler)
        self.port = self._server.server_address[1]
        serve = threading.Thread(target=self._server.serve_forever, name="fake-http", daemon=True)
        deliver = threading.Thread(target=self._deliver_loop, name="fake-callbacks", daemon=True)
        self._threads = [serve, deliver]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._heap_cv:
            self._heap_cv.notify_all()
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

    # ---- test helpers --------------------------------------------------------------------------
    def force(self, *kinds: str) -> None:
        """The next requests fail in these ways, in order ("5xx", "timeout", "reset", "429")."""
        with self.lock:
            self.forced.extend(kinds)

    def count(self, provider: str, key: str) -> int:
        with self.lock:
            return self.calls_by_key[(provider, key)]

    def accepted(self, provider: str, key: str) -> int:
        """Sends with this key the provider took as messages (a quota refusal is a call, but no
        message: sending it again the next day is right, not a duplicate)."""
        with self.lock:
            return self.accepted_by_key[(provider, key)]

    def new_day(self) -> None:
        """Midnight at the provider: the daily quota is whole again."""
        with self.lock:
            self.quota_used = 0

    def reset(self) -> None:
        with self.lock:
            self.accepted_by_key.clear()
            self.quota_used = 0
            self.calls_by_key.clear()
            self.requests.clear()
            self.forced.clear()
            self.messages.clear()
            self.by_key.clear()
            self.total = 0

    def last(self, path_part: str) -> dict | None:
        with self.lock:
            for r in reversed(self.requests):
                if path_part in r["path"]:
                    return r
        return None

    # ---- callbacks -----------------------------------------------------------------------------
    def schedule(self, delay: float, method: str, url: str, payload) -> None:
        if not self.callbacks or not url:
            return
        with self._heap_cv:
            heapq.heappush(
                self._heap,
                (
                    time.monotonic() + delay,
                    next(self._seq),
                    {"method": method, "url": url, "payload": payload},
                ),
            )
            self._heap_cv.notify()

    def _deliver_loop(self) -> None:
        session = requests.Session()
        session.trust_env = False
        while not self._stopping.is_set():
            with self._heap_cv:
                while not self._stopping.is_set() and (
                    not self._heap or self._heap[0][0] > time.monotonic()
                ):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else 0.5
                    self._heap_cv.wait(max(0.001, min(timeout, 0.5)))
                if self._stopping.is_set():
                    return
                _due, _n, job = heapq.heappop(self._heap)
            try:
                if job["method"] == "GET":
                    session.get(job["url"], params=job["payload"], timeout=10)
                else:
                    session.post(job["url"], json=job["payload"], timeout=10)
                with self.lock:
                    self.callbacks_sent += 1
            except requests.RequestException:
                with self.lock:
                    self.callback_errors += 1

    # ---- request handling (called by the handler threads) ----------------------------------------
    def pick_error(self) -> str | None:
        with self.lock:
            if self.forced:
                return self.forced.popleft()
        if self.error_rate and self.random.random() < self.error_rate:
            return self.random.choice(self.error_kinds)
        return None

    def note(
        self, provider: str, key: str, path: str, method: str, headers: dict, body, client=None
    ) -> None:
        with self.lock:
            self.total += 1
            if key:
                self.calls_by_key[(provider, key)] += 1
            self.requests.append(
                {
                    "client": client,
                    "provider": provider,
                    "path": path,
                    "method": method,
                    "headers": headers,
                    "body": body,
                }
            )

    def outcome(self) -> tuple[bool, int, str]:
        """(fails?, Zalo error code, message) for a new message."""
        if self.fail_rate and self.random.random() < self.fail_rate:
            return True, -118, "Zalo account not existed"
        return False, 0, "Success"


def _msg_id() -> str:
    return uuid.uuid4().hex


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
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            self._reply(400, {"error": "bad json"})
            return
        if fake.latency_ms:
            time.sleep(fake.latency_ms / 1000.0)
        try:
            status, answer, provider, key = self._route(method, path, query, body)
        except Exception as exc:  # a fake must answer, not die
            self._reply(500, {"error": f"fake crashed: {type(exc).__name__}: {exc}"})
            return
        fake.note(
            provider, key, path, method, dict(self.headers), body or query, self.client_address[1]
        )
        error = fake.pick_error() if provider else None
        if error == "reset":
            self._reset()
            return
        if error == "timeout":
            time.sleep(fake.hang_seconds)
            self._reset()
            return
        if error == "5xx":
            self._reply(500, {"code": "internal", "msg": "injected server error"})
            return
        if error == "429":
            self._reply(
                429, {"code": "resource_exhausted", "msg": "slow down"}, {"Retry-After": "0"}
            )
            return
        try:
            self._reply(status, answer)
        except OSError:
            self.close_connection = True

    def _route(self, method: str, path: str, query: dict, body):
        if path.startswith("/esms-status/"):
            return (*self._esms_status(path, body), "esms", "")
        if path.startswith("/esms/"):
            return self._esms(method, path, query, body)
        if path.startswith("/etelecom/"):
            return self._etelecom(path, body)
        if path.startswith("/mmp/"):
            return self._mmp(method, path, query, body)
        if path == "/health":
            return 200, {"ok": True, "total": self.provider.total}, "", ""
        return 404, {"error": "no such route"}, "", ""

    # -- eSMS (providers.md §2) --
    def _esms(self, method: str, path: str, query: dict, body: dict):
        fake = self.provider
        name = path.split("/json/", 1)[-1].strip("/")
        creds = body if method == "POST" else query
        if not creds.get("ApiKey") or not creds.get("SecretKey"):
            return (
                200,
                {"CodeResult": "101", "CountRegenerate": 0, "ErrorMessage": "Authorize Failed"},
                "esms",
                "",
            )
        if name in ("SendZaloMessage_V4_post_json", "SendZaloMessage_V6"):
            key = str(body.get("RequestId") or "")
            if not body.get("OAID") or not body.get("TempID"):
                return (
                    200,
                    {
                        "CodeResult": "791",
                        "CountRegenerate": 0,
                        "ErrorMessage": "Missing OAID or TempID",
                    },
                    "esms",
                    key,
                )
            with fake.lock:
                existing = fake.by_key.get(("esms", key)) if key else None
            if existing:
                # RequestId seen within 24 h: duplicate (providers.md §2.2).
                return (
                    200,
                    {
                        "CodeResult": "124",
                        "CountRegenerate": 0,
                        "ErrorMessage": "Duplicate RequestId",
                    },
                    "esms",
                    key,
                )
            smsid = _msg_id()
            failed, code, text = fake.outcome()
            record = {
                "provider": "esms",
                "SMSID": smsid,
                "RequestId": key,
                "phone": body.get("Phone"),
                "oaid": body.get("OAID"),
                "tempid": body.get("TempID"),
                "zalo_msg_id": _msg_id(),
                "failed": failed,
                "error": code,
                "message": text,
            }
            with fake.lock:
                fake.messages[smsid] = record
                if key:
                    fake.by_key[("esms", key)] = smsid
            url = body.get("CallbackUrl") or fake.callback_urls.get("esms", "")
            fake.schedule(fake.callback_delay, "GET", url, _esms_callback(record))
            return 200, {"CodeResult": "100", "CountRegenerate": 0, "SMSID": smsid}, "esms", key
        if name == "QueryZnsStatus":
            record = fake.messages.get(str(body.get("SmsId")))
            if record is None:
                return 200, {"CodeResult": "854", "ErrorMessage": "No data found"}, "esms", ""
            data = {
                "ErrorInfo": str(record["error"]),
                "FinalStatus": "1",
                "SMSID": record["SMSID"],
                "SendFailed": 1 if record["failed"] else 0,
                "SendStatus": 5,
                "SendSuccess": 0 if record["failed"] else 1,
                "TotalPrice": 0 if record["failed"] else 300,
                "TotalReceiver": 1,
                "TotalSent": 1,
                "ZaloMsgId": record["zalo_msg_id"],
            }
            return 200, {"CodeResult": "100", "Data": data}, "esms", ""
        if name == "ZNS/GetListZOA":
            return (
                200,
                {"CodeResult": "100", "ZOAList": [{"OAID": OA_ID, "OAName": "Loa Fake OA"}]},
                "esms",
                "",
            )
        if name == "ZNS/GetQuota":
            return (
                200,
                {"CodeResult": "100", "DailyQuota": 5000, "RemainingQuota": 4990},
                "esms",
                "",
            )
        if name == "GetTemplate":
            items = [
                {
                    "TempId": tid,
                    "TempName": t["name"],
                    "TempContent": "<p>Xin chào &lt;customer_name&gt;, đơn &lt;order_code&gt;</p>",
                    "ZNSTempDetail": [
                        {"Param": p, "ParamLevel": i + 1, "Limit": lim, "RequireType": typ}
                        for i, (p, typ, lim) in enumerate(t["params"])
                    ],
                }
                for tid, t in TEMPLATES.items()
            ]
            return 200, {"CodeResult": "100", "ZNSTemplates": items}, "esms", ""
        if name == "GetZnsTemplateInfo":
            t = TEMPLATES.get(str(query.get("TemplateId")))
            if t is None:
                return 200, {"CodeResult": "790", "ErrorMessage": "Wrong template"}, "esms", ""
            info = {
                "TemplateId": query.get("TemplateId"),
                "TemplateName": t["name"],
                "Status": "ENABLE",
                "TemplateTag": "TRANSACTION",
                "Price": "300",
                "PreviewUrl": "https://account.zalo.cloud/znspreview/x",
                "ListParams": [
                    {"Name": p, "Require": True, "Type": "STRING", "MaxLength": lim, "MinLength": 0}
                    for p, _typ, lim in t["params"]
                ],
                "ListButtons": [],
            }
            return 200, {"CodeResult": "100", "Data": info}, "esms", ""
        return 404, {"CodeResult": "99", "ErrorMessage": "no such eSMS route"}, "esms", ""

    def _esms_status(self, path: str, body: dict):
        fake = self.provider
        if not body.get("ApiKey"):
            return 200, {"Code": 101, "Message": "Authorize Failed"}
        rows = []
        for smsid in body.get("ListRefid") or []:
            record = fake.messages.get(str(smsid))
            if record:
                cb = _esms_callback(record)
                rows.append(
                    {
                        "SMSID": cb["SMSID"],
                        "SendFailed": cb["SendFailed"],
                        "SendSuccess": cb["SendSuccess"],
                        "SendStatus": cb["SendStatus"],
                        "TotalPrice": cb["TotalPrice"],
                        "RequestId": cb["RequestId"],
                        "Partnerids": cb["partnerids"],
                        "ErrorInfo": cb["error_info"],
                        "OAId": cb["oaid"],
                    }
                )
        return 200, {"Code": 100, "Message": "Success", "Data_callback": rows}

    # -- eTelecom (providers.md §1) --
    def _etelecom(self, path: str, body: dict):
        fake = self.provider
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or len(auth) <= 7:
            return (
                401,
                {"code": "unauthenticated", "msg": "missing or invalid api key"},
                "etelecom",
                "",
            )
        if "application/json" not in (self.headers.get("Content-Type") or ""):
            return 404, {"code": "bad_route", "msg": 'unexpected Content-Type: ""'}, "etelecom", ""
        method = path.rsplit("/", 1)[-1]
        if method in ("SendZNS", "SendZNSJourney"):
            key = str(body.get("tracking_id") or "")
            if not body.get("oa_id") or not isinstance(body.get("template_id"), int):
                return (
                    400,
                    {"code": "invalid_argument", "msg": "oa_id and template_id are required"},
                    "etelecom",
                    key,
                )
            with fake.lock:
                over_quota = fake.daily_quota is not None and fake.quota_used >= fake.daily_quota
                fake.quota_used += not over_quota
            if over_quota:
                # eTelecom relays Zalo's refusal as a failed message ([I] providers.md §1.3).
                failed, code, text = True, -144, "OA daily quota exceeded"
            else:
                failed, code, text = fake.outcome()
            now = _now_iso()
            message = {
                "id": str(next(fake._seq) + 1_000_000),
                "msg_id": _msg_id(),
                "oa_id": str(body["oa_id"]),
                "phone": body.get("phone"),
                "template_id": body["template_id"],
                "template_data": body.get("template_data") or {},
                "tracking_id": key,
                "type": "journey" if method == "SendZNSJourney" else "template",
                "status": "N" if failed else "P",
                "delivery_status": "unknown",
                "error_code": code,
                "error_message": text if failed else "",
                "fee_main": 0,
                "fee_token": 0,
                "is_charged": False,
                "is_development": body.get("mode") == "development",
                "sending_mode": body.get("sending_mode", "unknown"),
                "created_at": now,
                "updated_at": now,
                "sent_time": now,
            }
            with fake.lock:
                fake.messages[message["msg_id"]] = message
                if key:
                    fake.by_key[("etelecom", key)] = message["msg_id"]
                    fake.accepted_by_key[("etelecom", key)] += not over_quota
            if not failed:
                self._etelecom_callback(message)
            return 200, message, "etelecom", key
        if method == "GetMessage":
            message = fake.messages.get(str(body.get("msg_id")))
            if message is None:
                return 404, {"code": "not_found", "msg": "message not found"}, "etelecom", ""
            return 200, message, "etelecom", ""
        if method == "ListMessages":
            flt = body.get("filter") or {}
            with fake.lock:
                found = [
                    m
                    for m in fake.messages.values()
                    if m.get("type") in ("template", "journey")
                    and all(
                        str(m.get(k)) == str(v)
                        for k, v in flt.items()
                        if k in ("tracking_id", "oa_id", "msg_id")
                    )
                ]
            limit = int((body.get("paging") or {}).get("limit") or 100)
            return (
                200,
                {"messages": found[:limit], "paging": {"limit": limit, "next": ""}},
                "etelecom",
                "",
            )
        if method == "ListTemplates":
            templates = [
                {
                    "template_id": int(tid),
                    "template_name": t["name"],
                    "template_status": "ENABLE",
                    "template_tag": "TRANSACTION",
                    "template_quality": "HIGH",
                    "preview_url": "https://account.zalo.cloud/znspreview/x",
                    "price": 300,
                    "oa_id": OA_ID,
                    "template_params": [
                        {
                            "name": p,
                            "type": "STRING",
                            "require": True,
                            "max_length": lim,
                            "min_length": 0,
                            "accept_null": False,
                        }
                        for p, _typ, lim in t["params"]
                    ],
                }
                for tid, t in TEMPLATES.items()
            ]
            return 200, {"templates": templates, "paging": {"next": ""}}, "etelecom", ""
        if method == "ListOA":
            return (
                200,
                {
                    "accounts": [
                        {
                            "oa_id": OA_ID,
                            "name": "Loa Fake OA",
                            "current_quality": "HIGH",
                            "daily_quota": 5000,
                            "remaining_quota": 4990,
                            "webhook_url": fake.callback_urls.get("etelecom", ""),
                        }
                    ]
                },
                "etelecom",
                "",
            )
        if method == "UpdateShopOA":
            fake.callback_urls["etelecom"] = str(body.get("webhook_url") or "")
            return (
                200,
                {"oa_id": body.get("oa_id"), "webhook_url": body.get("webhook_url"), "status": "P"},
                "etelecom",
                "",
            )
        return 404, {"code": "bad_route", "msg": f"no handler for {method}"}, "etelecom", ""

    def _etelecom_callback(self, message: dict) -> None:
        fake = self.provider
        url = fake.callback_urls.get("etelecom", "")
        if fake.etelecom_callback == "zalo":
            ts = str(int(time.time() * 1000))
            payload = {
                "app_id": "1234567890",
                "event_name": "user_received_message",
                "sender": {"id": message["oa_id"]},
                "recipient": {"id": "8471285721482"},
                "message": {
                    "msg_id": message["msg_id"],
                    "delivery_time": ts,
                    "tracking_id": message["tracking_id"],
                },
                "timestamp": ts,
            }
        else:
            payload = {
                **message,
                "delivery_status": "received",
                "delivery_time": _now_iso(),
                "is_charged": True,
                "fee_main": 300,
            }
        fake.schedule(fake.callback_delay, "POST", url, payload)

    # -- MMP (paths assumed by providers/mmp.py) --
    def _mmp(self, method: str, path: str, query: dict, body):
        fake = self.provider
        if not (self.headers.get("Authorization") or self.headers.get("x-api-key")):
            return 401, {"errorCode": "UNAUTHORIZED", "errorMessage": "missing api key"}, "mmp", ""
        route = path.removeprefix("/mmp")
        if route == "/api/v1/channel/broadcast" and method == "POST":
            key = str(body.get("clientMessageId") or "")
            message_id = str(uuid.uuid4())
            failed, _code, _text = fake.outcome()
            record = {
                "provider": "mmp",
                "messageId": message_id,
                "clientMessageId": key,
                "failed": failed,
                "publicId": body.get("publicId"),
                "applicationId": body.get("applicationId") or 3,
            }
            with fake.lock:
                fake.messages[message_id] = record
                if key:
                    fake.by_key[("mmp", key)] = message_id
            url = fake.callback_urls.get("mmp", "")
            steps = [(3, "FAIL")] if failed else [(4, "DELIVERED"), (5, "READ")]
            for i, (status, cause) in enumerate(steps):
                fake.schedule(
                    fake.callback_delay * (i + 1), "POST", url, _mmp_status(record, status, cause)
                )
            return 200, {"messageId": message_id, "clientMessageId": key}, "mmp", key
        if route == "/api/v1/message/status" and method == "GET":
            message_id = query.get("messageId") or fake.by_key.get(
                ("mmp", query.get("clientMessageId", "")), ""
            )
            record = fake.messages.get(message_id)
            if record is None:
                return (
                    404,
                    {"errorCode": "NOT_FOUND", "errorMessage": "message not found"},
                    "mmp",
                    "",
                )
            status, cause = (3, "FAIL") if record["failed"] else (4, "DELIVERED")
            return 200, _mmp_status(record, status, cause), "mmp", ""
        if route == "/api/v1/email/send" and method == "POST":
            key = str(body.get("clientMessageId") or "")
            message_id = str(uuid.uuid4())
            with fake.lock:
                fake.messages[message_id] = {
                    "provider": "mmp-email",
                    "messageId": message_id,
                    "clientMessageId": key,
                    "failed": False,
                }
            return 200, {"messageId": message_id}, "mmp", key
        if route == "/api/v1/email/status" and method == "POST":
            rows = [
                {"messageId": i, "status": "DELIVERED"}
                for i in body.get("ids") or []
                if i in fake.messages
            ]
            return 200, {"data": rows}, "mmp", ""
        if route == "/api/v1/template/approved":
            return (
                200,
                {
                    "data": [
                        {
                            "publicId": "tpl-1",
                            "name": "Welcome",
                            "content": "Hello {{name}}, code {{code}}",
                            "status": "APPROVED",
                        }
                    ]
                },
                "mmp",
                "",
            )
        if route == "/api/v1/channel/conversation" and method == "POST":
            return (
                200,
                {"messageId": str(uuid.uuid4())},
                "mmp",
                str(body.get("clientMessageId") or ""),
            )
        if route.startswith("/api/v1/channel/") and method == "GET":
            return 200, {"publicId": route.split("/")[4], "status": "ACTIVE"}, "mmp", ""
        return 404, {"errorCode": "NOT_FOUND", "errorMessage": f"no route {route}"}, "mmp", ""


def _esms_callback(record: dict) -> dict:
    """A callback in eSMS's documented query format (providers.md §2.5)."""
    if record["failed"]:
        info = {"error": record["error"], "message": record["message"]}
    else:
        info = {
            "error": 0,
            "message": "Success",
            "data": {
                "delivery_time": None,
                "message": "The message was delivered to the user's phone",
                "status": 1,
            },
        }
    return {
        "SMSID": record["SMSID"],
        "SendFailed": 1 if record["failed"] else 0,
        "SendStatus": 5,
        "SendSuccess": 0 if record["failed"] else 1,
        "TotalPrice": "0.0000" if record["failed"] else "300.0000",
        "TotalReceiver": 1,
        "TotalSent": 1,
        "RequestId": record["RequestId"],
        "TypeId": 25,
        "telcoid": 2,
        "phonenumber": record["phone"],
        "partnerids": record["zalo_msg_id"],
        "error_info": json.dumps(info, ensure_ascii=False),
        "oaid": record["oaid"],
        "tempid": record["tempid"],
    }


def _mmp_status(record: dict, status: int, cause: str) -> dict:
    """The broadcast status webhook exactly as seed 000 shows it."""
    return {
        "messageId": record["messageId"],
        "cause": cause,
        "clientMessageId": record["clientMessageId"],
        "timestamp": int(time.time() * 1000),
        "type": 1,
        "status": status,
        "publicId": str(uuid.uuid4()),
        "applicationId": record.get("applicationId") or 3,
    }


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
