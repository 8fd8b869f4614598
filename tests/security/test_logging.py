"""Structured logs: one JSON object per record, the request id on it, no secrets in it."""

from __future__ import annotations

import io
import json
import logging

import pytest

from config.logging import JsonFormatter, PlainFormatter, RequestIdFilter
from providers import crypto
from providers.logfilter import RedactFilter


@pytest.fixture
def capture():
    """A handler wired like settings.LOGGING's console handler, writing to a buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactFilter())
    logger = logging.getLogger("loa.test.capture")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def records(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_one_json_object_per_record_even_with_newlines_and_tracebacks(capture):
    logger, stream = capture
    logger.info("line one\nline two %s", "arg", extra={"campaign_id": 7})
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        logger.exception("failed")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(x) for x in lines)
    assert first["message"] == "line one\nline two arg"
    assert first["level"] == "INFO" and first["logger"] == "loa.test.capture"
    assert first["campaign_id"] == 7
    assert first["request_id"] == "-"
    assert "ValueError: boom" in second["exc"] and second["level"] == "ERROR"


def test_credentials_are_masked_by_field_name_and_by_value(capture):
    logger, stream = capture
    crypto.remember_secret_values(["Zx9-value-known-to-this-process"])
    logger.warning('payload {"ApiKey": "AK-123456", "Phone": "0901"} url=/x?SecretKey=SK-987654')
    logger.error("provider said: Zx9-value-known-to-this-process is wrong")
    try:
        raise RuntimeError("refused key Zx9-value-known-to-this-process")
    except RuntimeError:
        logger.exception("call failed for %s", "Zx9-value-known-to-this-process")
    text = stream.getvalue()
    for secret in ("AK-123456", "SK-987654", "Zx9-value-known-to-this-process"):
        assert secret not in text
    assert '"Phone": "0901"' in records(stream)[0]["message"]  # ordinary data is kept


def test_request_id_from_the_middleware_reaches_log_records(client, capture, db):
    logger, stream = capture
    from django.urls import path

    def view(request):
        logger.info("inside the view")
        from django.http import HttpResponse

        return HttpResponse("ok")

    from django.test import override_settings

    urlconf = type("U", (), {"urlpatterns": [path("probe/", view)]})
    with override_settings(ROOT_URLCONF=urlconf):
        r = client.get("/probe/", HTTP_X_REQUEST_ID="abc-123")
        r2 = client.get("/probe/", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert r["X-Request-ID"] == "abc-123"
    # a malformed incoming id is replaced (it would let a client forge log lines)
    assert r2["X-Request-ID"] != "bad id\nwith newline" and len(r2["X-Request-ID"]) == 32
    ids = [rec["request_id"] for rec in records(stream)]
    assert ids == ["abc-123", r2["X-Request-ID"]]
    logger.info("outside")
    assert records(stream)[-1]["request_id"] == "-"


def test_plain_formatter_carries_the_request_id():
    rec = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    assert "[-] hello" in PlainFormatter().format(rec)


def test_settings_logging_uses_the_filters():
    from django.conf import settings

    handler = settings.LOGGING["handlers"]["console"]
    assert handler["filters"] == ["request_id", "redact"]
    assert settings.LOGGING["loggers"]["urllib3"]["level"] == "WARNING"


def test_gunicorn_access_records_keep_their_fields_and_lose_query_credentials():
    """gunicorn's access handler (config/gunicorn.conf.py): the redaction filter masks a
    credential in the query string and the webhook token in the path, and leaves the atoms for
    JsonFormatter to write as fields."""
    atoms = {
        "h": "203.0.113.5",
        "m": "GET",
        "U": "/webhooks/x/",
        "q": "ApiKey=AK-999999&x=1",
        "s": "200",
        "B": "12",
        "M": "3",
        "a": "probe",
        "{x-request-id}o": "rid-1",
    }
    rec = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "%(h)s", (atoms,), None)
    assert RedactFilter().filter(rec)
    out = json.loads(JsonFormatter().format(rec))
    assert "AK-999999" not in out["query"] and "x=1" in out["query"]
    assert out["status"] == 200 and out["request_id"] == "rid-1"
    assert out["path"] == "/webhooks/***/"  # the webhook token is a credential too


# ---- the webhook token (the only credential of /webhooks/) never reaches a log line ------------


def _project_streams():
    """Every handler of the loggers a request writes through, pointed at one buffer."""
    buffer = io.StringIO()
    swapped = []
    for name in ("", "django", "django.request", "django.server", "loa", "loa.webhooks"):
        for handler in logging.getLogger(name).handlers:
            pytest_own = type(handler).__module__.startswith("_pytest")
            if isinstance(handler, logging.StreamHandler) and not pytest_own:
                swapped.append((handler, handler.setStream(buffer)))
    return buffer, swapped


@pytest.mark.parametrize("debug", [False, True])
def test_callback_log_lines_hold_no_webhook_token(client, db, settings, debug):
    """Django's request log ("Bad Request: /webhooks/<token>/"), with DEBUG on or off, as
    text and as the JSON formatter's fields (the request object is one of them)."""
    from tests.factories import ProviderAccountFactory

    settings.DEBUG = debug
    account = ProviderAccountFactory(kind="sandbox")
    token = account.webhook_token
    buffer, swapped = _project_streams()
    try:
        client.post(f"/webhooks/{token}/", b"not json", content_type="application/json")
        client.post("/webhooks/NoSuchTokenAtAll123/", b"{}", content_type="application/json")
        record = logging.LogRecord(
            "django.request", logging.WARNING, __file__, 1, "Bad Request: %s", ("x",), None
        )
        from django.test import RequestFactory

        record.request = RequestFactory().post(f"/webhooks/{token}/")
        json_line = JsonFormatter().format(record) if RedactFilter().filter(record) else ""
    finally:
        for handler, old in swapped:
            handler.setStream(old)
    text = buffer.getvalue() + json_line
    assert "/webhooks/" in text  # the lines were written
    assert token not in text and "NoSuchTokenAtAll123" not in text


def test_granian_access_records_hold_no_webhook_token():
    """granian's access logger (off by default; docs/OPERATIONS.md shows how to wire the
    filter when it is turned on) passes its atoms as a dict, as gunicorn does."""
    atoms = {"addr": "203.0.113.5", "method": "POST", "path": "/webhooks/Tok3n-abc_123/"}
    rec = logging.LogRecord(
        "granian.access", logging.INFO, __file__, 1, "%(method)s %(path)s", (atoms,), None
    )
    assert RedactFilter().filter(rec)
    assert "Tok3n-abc_123" not in rec.getMessage() and "/webhooks/" in rec.getMessage()


@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_gunicorn_access_and_error_logs_hold_no_webhook_token(transactional_db, tmp_path, fmt):
    """A real gunicorn (config/gunicorn.conf.py) answering callbacks (a chunked one, a refused
    one, an unknown token): its whole output holds no token, in both log formats."""
    import os
    import time
    import urllib.request

    from tests.conftest import free_port, process_env, start_gunicorn
    from tests.factories import ProviderAccountFactory
    from webhooks.models import WebhookEvent

    account = ProviderAccountFactory(kind="sandbox")
    token = account.webhook_token
    port = free_port()
    env = process_env(
        PORT=str(port), WEB_CONCURRENCY="1", GUNICORN_THREADS="2", LOG_FORMAT=fmt, DEBUG="true"
    )
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        proc = start_gunicorn(env, log)
    base = f"http://127.0.0.1:{port}"

    def post(path, body, chunked=False):
        data = iter([body]) if chunked else body
        req = urllib.request.Request(base + path, data=data, method="POST")
        req.add_header("Content-Type", "application/json")
        if chunked:
            req.add_header("Transfer-Encoding", "chunked")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code

    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=5)
                break
            except OSError:
                time.sleep(0.3)
        good = b'{"msg_id": "m-1", "status": "delivered"}'
        assert post(f"/webhooks/{token}/", good, chunked=True) == 200
        assert post(f"/webhooks/{token}/", b"not json") == 400
        assert post("/webhooks/NoSuchTokenAtAll123/", b"{}") == 404
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
    text = log_path.read_text()
    assert "/webhooks/" in text, text[-2000:]  # access lines were written
    assert token not in text and "NoSuchTokenAtAll123" not in text, text[-3000:]
    bodies = set(WebhookEvent.objects.values_list("body", flat=True))
    assert good.decode() in bodies  # the chunked callback was read, not stored empty


def test_a_refused_page_logs_one_line_without_a_traceback_and_a_500_keeps_it(client, db, caplog):
    """A marketer opening an administrator's page is answered 403: one warning line, no
    traceback (issue 17: every 403 printed a full traceback). A 5xx keeps its traceback."""
    from django.contrib.auth.models import User

    from config.logging import ClientErrorFilter

    user = User.objects.create_user("m", "m@example.com", "pw", is_staff=True)
    client.force_login(user)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert client.get("/admin/providers/provideraccount/").status_code == 403
    refused = [r for r in caplog.records if r.name == "django.request"]
    assert len(refused) == 1 and refused[0].status_code == 403
    assert refused[0].exc_info is None and not refused[0].exc_text

    try:
        raise RuntimeError("the code's fault")
    except RuntimeError:
        import sys

        crash = logging.LogRecord(
            "django.request",
            logging.ERROR,
            __file__,
            1,
            "Internal Server Error",
            None,
            sys.exc_info(),
        )
    crash.status_code = 500
    assert ClientErrorFilter().filter(crash) and crash.exc_info is not None
