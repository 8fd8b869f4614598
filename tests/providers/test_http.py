"""The one HTTP layer: pooling, timeouts, safe retries only, rate limits, redacted call records.

Transport failures are tested twice: with `responses` raising the exceptions requests raises, and
against a real socket server (bench/fake_provider/) that resets connections, hangs past the
read timeout, or is not listening at all.
"""

from __future__ import annotations

import multiprocessing
import re
import socket
import ssl
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
import responses
from django.utils import translation
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from bench.fake_provider import FakeProviders
from providers import http, ratelimit
from providers.base import BaseProvider, ErrorClass, ProviderError, SendOutcome
from providers.errors import explain
from providers.esms.adapter import EsmsProvider
from providers.etelecom import EtelecomProvider

from .conftest import config, message

URL = "https://api.example.test/v1/thing"
ESMS_SECRETS = {"api_key": "AK-secret-123", "secret_key": "SK-secret-456"}


class Plain(BaseProvider):
    kind = "plain"


def plain(**kw) -> Plain:
    return Plain(config("plain", secrets={"api_key": "TOPSECRET-1"}, **kw))


def esms(**kw) -> EsmsProvider:
    return EsmsProvider(config("esms", secrets=ESMS_SECRETS, **kw))


def _refused() -> requests.exceptions.ConnectionError:
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111]")
    return requests.exceptions.ConnectionError(MaxRetryError(None, URL, reason))


def _reset() -> requests.exceptions.ConnectionError:
    return requests.exceptions.ConnectionError(
        ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer"))
    )


# ---- transport classification (responses) --------------------------------------------------------


@responses.activate
def test_connect_error_is_retried_once_then_retryable():
    responses.add(responses.POST, URL, body=_refused())
    responses.add(responses.POST, URL, body=_refused())
    p = plain()
    with pytest.raises(ProviderError) as err:
        p.request("POST", URL, json_body={"a": 1})
    assert err.value.error_class == ErrorClass.RETRYABLE
    assert err.value.code == "connect_error"
    assert len(responses.calls) == 2  # one safe retry: nothing was sent
    call = p.pop_last_call()
    assert call.attempts == 2 and call.error_class == "retryable"


@responses.activate
def test_connect_error_then_success():
    responses.add(responses.POST, URL, body=_refused())
    responses.add(responses.POST, URL, json={"ok": True})
    resp = plain().request("POST", URL, json_body={})
    assert resp.json() == {"ok": True}
    assert len(responses.calls) == 2


@responses.activate
def test_connect_timeout_is_retryable():
    responses.add(responses.POST, URL, body=requests.exceptions.ConnectTimeout("connect"))
    responses.add(responses.POST, URL, body=requests.exceptions.ConnectTimeout("connect"))
    with pytest.raises(ProviderError) as err:
        plain().request("POST", URL, json_body={})
    assert err.value.error_class == ErrorClass.RETRYABLE


@responses.activate
def test_read_timeout_on_a_send_is_ambiguous_and_never_resent():
    responses.add(responses.POST, URL, body=requests.exceptions.ReadTimeout("read"))
    with pytest.raises(ProviderError) as err:
        plain().request("POST", URL, json_body={"to": "849"})
    assert err.value.error_class == ErrorClass.AMBIGUOUS
    assert err.value.code == "read_timeout"
    assert len(responses.calls) == 1


@responses.activate
def test_reset_after_sending_is_ambiguous_and_never_resent():
    responses.add(responses.POST, URL, body=_reset())
    with pytest.raises(ProviderError) as err:
        plain().request("POST", URL, json_body={})
    assert err.value.error_class == ErrorClass.AMBIGUOUS
    assert err.value.code == "connection_reset"
    assert len(responses.calls) == 1


@responses.activate
def test_certificate_refused_is_configuration():
    import ssl

    cert = ssl.SSLCertVerificationError("certificate verify failed: CERTIFICATE_VERIFY_FAILED")
    responses.add(responses.POST, URL, body=requests.exceptions.SSLError(cert))
    with pytest.raises(ProviderError) as err:
        plain().request("POST", URL, json_body={})
    assert err.value.error_class == ErrorClass.CONFIGURATION
    assert len(responses.calls) == 1


@responses.activate
def test_idempotent_reads_retry_timeouts_resets_and_5xx():
    responses.add(responses.GET, URL, body=requests.exceptions.ReadTimeout("read"))
    responses.add(responses.GET, URL, status=503)
    responses.add(responses.GET, URL, json={"status": 4})
    resp = plain().request("GET", URL, idempotent=True)
    assert resp.json() == {"status": 4}
    assert len(responses.calls) == 3


@responses.activate
def test_5xx_on_a_send_is_returned_once_and_ambiguous():
    responses.add(responses.POST, URL, status=503, json={})
    resp = plain().request("POST", URL, json_body={})
    assert len(responses.calls) == 1
    result = BaseProvider.http_status_failure(resp)
    assert result.error_class == ErrorClass.AMBIGUOUS and result.error_code == "http_503"


@responses.activate
def test_a_redirect_is_not_followed_and_pauses_as_configuration():
    """A POST must not be re-sent elsewhere (301/302 turn it into a GET without its body)."""
    moved = "https://api.example.test/v2/thing"
    responses.add(responses.POST, URL, status=301, headers={"Location": moved})
    responses.add(responses.GET, moved, json={"ok": 1})
    p = plain()
    with pytest.raises(ProviderError) as err:
        p.request("POST", URL, json_body={})
    assert err.value.error_class == ErrorClass.CONFIGURATION and err.value.code == "http_301"
    assert moved in err.value.message
    assert len(responses.calls) == 1
    assert p.pop_last_call().error == "http_301"
    # Through an adapter, the whole send is refused as configuration: the campaign pauses.
    responses.add(responses.POST, re.compile(r"https://esms\.example\.test/.*"), status=302)
    result = esms(base_url="https://esms.example.test/v1").send(message())
    assert result.outcome == SendOutcome.FAILED
    assert result.error_class == ErrorClass.CONFIGURATION
    with translation.override("en"):  # what the admin shows next to the code
        assert "base URL" in explain(result.error_code)


@responses.activate
def test_cookies_from_a_provider_are_not_kept_between_calls():
    responses.add(responses.POST, URL, json={}, headers={"Set-Cookie": "sid=abc; Path=/"})
    responses.add(responses.POST, URL, json={})
    p = plain()
    p.request("POST", URL, json_body={})
    p.request("POST", URL, json_body={})
    assert "Cookie" not in responses.calls[1].request.headers


@responses.activate
def test_429_with_short_retry_after_is_retried():
    responses.add(responses.POST, URL, status=429, headers={"Retry-After": "0"})
    responses.add(responses.POST, URL, json={"ok": 1})
    p = plain()
    resp = p.request("POST", URL, json_body={})
    assert resp.status_code == 200
    assert len(responses.calls) == 2
    assert p.pop_last_call().attempts == 2


@responses.activate
def test_429_with_long_or_missing_retry_after_goes_back_to_the_engine():
    responses.add(responses.POST, URL, status=429, headers={"Retry-After": "120"})
    resp = plain().request("POST", URL, json_body={})
    assert len(responses.calls) == 1
    result = BaseProvider.http_status_failure(resp)
    assert result.error_class == ErrorClass.RETRYABLE and result.retry_after == 120
    responses.add(responses.POST, URL + "/2", status=429)
    resp = plain().request("POST", URL + "/2", json_body={})
    assert len(responses.calls) == 2  # no Retry-After: not retried here
    assert BaseProvider.http_status_failure(resp).retry_after == 5.0


def test_retry_after_http_date():
    when = datetime.now(UTC) + timedelta(seconds=30)
    assert 25 <= http.parse_retry_after(format_datetime(when, usegmt=True)) <= 31
    assert http.parse_retry_after("3") == 3.0
    assert http.parse_retry_after("soon") is None
    assert http.parse_retry_after(None) is None


@responses.activate
def test_other_http_statuses():
    for status, klass in (
        (401, ErrorClass.CONFIGURATION),
        (403, ErrorClass.CONFIGURATION),
        (408, ErrorClass.RETRYABLE),
    ):
        responses.add(responses.POST, f"{URL}/{status}", status=status)
        resp = plain().request("POST", f"{URL}/{status}", json_body={})
        assert BaseProvider.http_status_failure(resp).error_class == klass
    responses.add(responses.POST, f"{URL}/ok", status=200)
    assert BaseProvider.http_status_failure(plain().request("POST", f"{URL}/ok")) is None


# ---- call records --------------------------------------------------------------------------------


@responses.activate
def test_call_record_redacts_every_secret():
    responses.add(
        responses.POST,
        "https://rest.esms.vn/MainService.svc/json/SendZaloMessage_V4_post_json/",
        json={"CodeResult": "100", "SMSID": "s1", "echo": "AK-secret-123"},
    )
    p = esms()
    result = p.send(message())
    assert result.outcome == SendOutcome.ACCEPTED
    call = p.pop_last_call()
    assert call.status == 200 and call.duration_ms >= 0 and call.attempts == 1
    for text in (call.url, call.request_body, call.response_body):
        assert "AK-secret-123" not in text and "SK-secret-456" not in text
    assert '"ApiKey": "***"' in call.request_body
    assert '"Phone": "0901888484"' in call.request_body  # the useful part stays readable
    assert p.pop_last_call() is None  # popped once


@responses.activate
def test_call_record_redacts_query_credentials_and_bearer():
    responses.add(
        responses.GET,
        "https://rest.esms.vn/MainService.svc/json/GetZnsTemplateInfo",
        json={"CodeResult": "100", "Data": {}},
    )
    p = esms()
    p.template_info(template_id="1", oa_id="2")
    call = p.pop_last_call()
    assert "ApiKey=***" in call.url and "AK-secret" not in call.url and "SK-secret" not in call.url
    responses.add(
        responses.POST,
        "https://api.etelecom.vn/v1/shop.Zalo/ListOA",
        json={"accounts": []},
        status=200,
    )
    e = EtelecomProvider(config("etelecom", secrets={"api_key": "BEARER-VALUE-9"}))
    e.list_official_accounts()
    assert responses.calls[-1].request.headers["Authorization"] == "Bearer BEARER-VALUE-9"
    rec = e.pop_last_call()
    assert "BEARER-VALUE-9" not in f"{rec.url}{rec.request_body}{rec.response_body}"


@responses.activate
def test_last_call_is_per_thread():
    responses.add(responses.POST, URL + "/a", json={})
    responses.add(responses.POST, URL + "/b", json={})
    p = plain()
    seen = {}

    def run(path):
        p.request("POST", URL + path, json_body={})
        seen[path] = p.pop_last_call().url

    threads = [threading.Thread(target=run, args=(x,)) for x in ("/a", "/b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"/a": URL + "/a", "/b": URL + "/b"}


def test_sessions_are_pooled_per_account_and_survive_close():
    a1, a2 = plain(account_id=1), plain(account_id=1)
    b = plain(account_id=2)
    assert a1.session is a2.session
    assert a1.session is not b.session
    s = a1.session
    a1.close()
    assert plain(account_id=1).session is s  # the pool outlives one driver run
    http.close_sessions()
    assert plain(account_id=1).session is not s


def test_per_account_timeouts_from_settings(settings):
    p = plain(settings={"http": {"read_timeout": 2.5, "connect_timeout": 1}})
    assert p.http_policy.read_timeout == 2.5 and p.http_policy.connect_timeout == 1
    assert plain().http_policy.read_timeout == settings.LOA["HTTP_READ_TIMEOUT"]
    assert (
        plain(settings={"http": {"read_timeout": "x"}}).http_policy.read_timeout
        == settings.LOA["HTTP_READ_TIMEOUT"]
    )


# ---- real sockets -----------------------------------------------------------------------------------


@pytest.fixture
def fake():
    with FakeProviders(callbacks=False, hang_seconds=2.0) as server:
        yield server


def _esms_on(fake, **settings) -> EsmsProvider:
    return EsmsProvider(
        config("esms", base_url=fake.url("esms"), secrets=ESMS_SECRETS, settings=settings)
    )


def test_real_reset_is_ambiguous_and_sent_exactly_once(fake):
    fake.force("reset")
    p = _esms_on(fake)
    result = p.send(message(idempotency_key="reset-1"))
    assert result.outcome == SendOutcome.FAILED
    assert result.error_class == ErrorClass.AMBIGUOUS
    assert result.error_code == "connection_reset"
    assert fake.count("esms", "reset-1") == 1
    assert p.pop_last_call().attempts == 1


def test_real_timeout_is_ambiguous_and_sent_exactly_once(fake, fast_http):
    fake.force("timeout")
    p = _esms_on(fake)
    started = time.monotonic()
    result = p.send(message(idempotency_key="hang-1"))
    assert time.monotonic() - started < 1.9  # the read timeout, not the server, ended it
    assert result.error_class == ErrorClass.AMBIGUOUS
    assert result.error_code == "read_timeout"
    assert fake.count("esms", "hang-1") == 1


def test_real_5xx_is_ambiguous_and_sent_once(fake):
    fake.force("5xx")
    result = _esms_on(fake).send(message(idempotency_key="five-1"))
    assert result.error_class == ErrorClass.AMBIGUOUS and result.error_code == "http_500"
    assert fake.count("esms", "five-1") == 1


def test_real_connection_refused_is_retryable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nobody listens there
    p = EsmsProvider(config("esms", base_url=f"http://127.0.0.1:{port}/x", secrets=ESMS_SECRETS))
    result = p.send(message())
    assert result.error_class == ErrorClass.RETRYABLE
    assert result.error_code == "connect_error"
    assert p.pop_last_call().attempts == 2


def test_real_status_query_retries_after_a_reset(fake):
    p = _esms_on(fake, status_base_url=fake.url("esms_status"))
    sent = p.send(message(idempotency_key="q-1"))
    fake.force("reset")
    event = p.fetch_status(provider_message_id=sent.provider_message_id, idempotency_key="q-1")
    assert event.status == "delivered"  # read-only: the retry was safe and happened


def test_keep_alive_reuses_one_connection(fake):
    p = _esms_on(fake)
    for i in range(10):
        assert p.send(message(idempotency_key=f"ka-{i}")).outcome == SendOutcome.ACCEPTED
    clients = {r["client"] for r in list(fake.requests)}
    assert len(clients) == 1


# ---- rate limits ----------------------------------------------------------------------------------


def test_gcra_reserve_math():
    wait, tat = ratelimit._reserve(None, 100.0, rate=10, burst=1)
    assert wait == 0 and tat == pytest.approx(100.1)
    wait, tat = ratelimit._reserve(tat, 100.0, rate=10, burst=1)
    assert wait == pytest.approx(0.1) and tat == pytest.approx(100.2)
    # burst 3: three immediate slots, then paced
    tat = None
    waits = []
    for _ in range(4):
        w, tat = ratelimit._reserve(tat, 50.0, rate=10, burst=3)
        waits.append(round(w, 3))
    assert waits == [0, 0, 0, 0.1]
    # a stored time far in the future (clock jump) is forgotten
    assert ratelimit._reserve(1e12, 50.0, rate=10, burst=1)[0] == 0


def test_file_bucket_paces_threads(tmp_path):
    limiter = ratelimit.FileLimiter(str(tmp_path))
    stamps = []
    lock = threading.Lock()

    def worker():
        for _ in range(5):
            wait = limiter.reserve("acct-1-send", 50.0)
            time.sleep(wait)
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stamps.sort()
    assert stamps[-1] - stamps[0] >= 19 / 50 - 0.05  # 20 requests at 50/s, none early


def _proc_worker(directory, n, rate, queue):
    limiter = ratelimit.FileLimiter(directory)
    for _ in range(n):
        time.sleep(limiter.reserve("shared-send", rate))
        queue.put(time.time())


def test_file_bucket_is_shared_between_processes(tmp_path):
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_proc_worker, args=(str(tmp_path), 10, 40.0, queue)) for _ in range(2)
    ]
    for p in procs:
        p.start()
    stamps = sorted(queue.get(timeout=10) for _ in range(20))
    for p in procs:
        p.join(timeout=10)
    # 40/s shared by both processes: 20 requests span >= 19/40 s (each process alone would finish
    # its 10 in 9/40 s), and any 9 consecutive ones span >= 8/40 s. A request can be late (the
    # box is shared: scheduler jitter) but never early, hence the tolerance on one side only.
    windows = [b - a for a, b in zip(stamps, stamps[8:], strict=False)]
    assert min(windows) >= 8 / 40 - 0.05
    assert stamps[-1] - stamps[0] >= 19 / 40 - 0.05


def _redis_up() -> bool:
    try:
        import redis

        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=0.3).ping())
    except Exception:
        return False


@pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")
def test_redis_bucket():
    limiter = ratelimit.RedisLimiter(
        "redis://127.0.0.1:6379/15", prefix=f"loa-test:{uuid.uuid4()}:"
    )
    assert limiter.reserve("k", 10.0) == pytest.approx(0, abs=0.01)
    assert limiter.reserve("k", 10.0) == pytest.approx(0.1, abs=0.02)
    assert limiter.reserve("other", 10.0) == pytest.approx(0, abs=0.01)


def test_redis_down_falls_back_to_local_buckets(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    limiter = ratelimit._Fallback(
        ratelimit.RedisLimiter(f"redis://127.0.0.1:{port}/0"), ratelimit.FileLimiter(str(tmp_path))
    )
    assert limiter.reserve("k", 10.0) == 0
    assert limiter.reserve("k", 10.0) == pytest.approx(0.1, abs=0.02)


@responses.activate
def test_send_respects_the_account_rate():
    responses.add(
        responses.POST,
        "https://rest.esms.vn/MainService.svc/json/SendZaloMessage_V4_post_json/",
        json={"CodeResult": "100", "SMSID": "x"},
    )
    p = EsmsProvider(config("esms", secrets=ESMS_SECRETS, rate_limit=20.0))
    started = time.monotonic()
    for i in range(5):
        p.send(message(idempotency_key=f"r{i}"))
    assert time.monotonic() - started >= 4 / 20 - 0.01


# ---- the urllib3 path of JSON calls (http.send_json), over real sockets -----------------------------


def test_json_calls_go_through_urllib3_with_one_pooled_client(fake):
    """A send is a JSON call: it goes through the account's urllib3 pool, not requests, and
    the answer reads as the adapters read a requests.Response."""
    p = _esms_on(fake)
    assert not http.requests_mocked()
    url = f"{fake.url('esms')}/SendZaloMessage_V4_post_json/"
    body = {**ESMS_SECRETS, "Phone": "0912345678", "TempID": "1", "OAID": "1", "RequestId": "u-1"}
    body = {"ApiKey": body.pop("api_key"), "SecretKey": body.pop("secret_key"), **body}
    resp = p.request("POST", url, json_body=body)
    assert isinstance(resp, http.Answer)
    assert resp.status_code == 200 and resp.json()["CodeResult"] == "100"
    assert resp.headers.get("content-type", "").startswith("application/json")
    assert p.send(message(idempotency_key="u-2")).outcome == SendOutcome.ACCEPTED
    # The request the fake read: JSON, with its content type, our User-Agent.
    last = list(fake.requests)[-1]
    assert last["headers"].get("Content-Type") == "application/json"
    assert last["headers"].get("User-Agent") == http.USER_AGENT


def test_real_429_with_short_retry_after_is_retried_through_urllib3(fake):
    fake.force("429")
    p = _esms_on(fake)
    result = p.send(message(idempotency_key="r429-1"))
    call = p.pop_last_call()
    assert call.attempts == 2  # the provider refused the first: asking again is safe
    assert result.outcome == SendOutcome.ACCEPTED
    assert fake.count("esms", "r429-1") == 2


def test_real_redirect_is_not_followed_through_urllib3():
    """A server answering 302 to a POST: urllib3 does not follow it (no GET elsewhere), the
    call is a configuration error, made once."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    hits = []

    class Moved(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            hits.append(self.path)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:1/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Moved)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/v1"
        p = EsmsProvider(config("esms", base_url=base, secrets=ESMS_SECRETS))
        result = p.send(message())
        assert result.error_class == ErrorClass.CONFIGURATION and result.error_code == "http_302"
        assert len(hits) == 1
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("exc", "meaning", "code"),
    [
        (NewConnectionError(None, "[Errno 111] Connection refused"), http.CONNECT, "connect_error"),
        (ConnectTimeoutError(None, "timed out"), http.CONNECT, "connect_timeout"),
        (ReadTimeoutError(None, URL, "Read timed out."), http.UNKNOWN, "read_timeout"),
        (
            ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")),
            http.UNKNOWN,
            "connection_reset",
        ),
        (
            SSLError(ssl.SSLCertVerificationError("CERTIFICATE_VERIFY_FAILED")),
            http.TLS_CONFIG,
            "tls_certificate",
        ),
        (SSLError("decryption failed"), http.UNKNOWN, "tls_error"),
    ],
)
def test_urllib3_errors_mean_what_requests_errors_mean(exc, meaning, code):
    """send_json raises urllib3's own exceptions (retries=False): each is read as requests'
    wrapper of the same error is (the responses-driven tests above)."""
    assert http.classify_exception(exc)[:2] == (meaning, code)
