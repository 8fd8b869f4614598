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
    credential in the query string and leaves the atoms for JsonFormatter to write as fields."""
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
    assert out["status"] == 200 and out["path"] == "/webhooks/x/" and out["request_id"] == "rid-1"
