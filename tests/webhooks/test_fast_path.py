"""The WSGI fast path for callbacks (webhooks.wsgi) and the group commit behind it
(webhooks.intake): the same answers and stored rows as Django's view, everything it does not
handle handed to Django, and concurrent callbacks stored exactly once each."""

from __future__ import annotations

import io
import json
import threading
from urllib.parse import urlencode

import pytest
from django.core.cache import cache
from django.db import OperationalError, connection
from django.test import override_settings

from config.wsgi import application
from tests.factories import ProviderAccountFactory
from webhooks import intake
from webhooks.models import WebhookEvent
from webhooks.wsgi import WebhookFastPath

OUT = WebhookEvent.Outcome


@pytest.fixture(autouse=True)
def fresh(fast_path_fresh):
    """Every test here calls the fast path (tests/webhooks/conftest.py)."""


def esms_query(smsid: str, status: str = "5") -> str:
    return urlencode(
        {
            "SMSID": smsid,
            "SendStatus": status,
            "SendSuccess": "1",
            "SendFailed": "0",
            "RequestId": f"req-{smsid}",
            "error_info": '{"error":0,"message":"Success"}',
        }
    )


def call(path: str, query: str = "", *, method="GET", body=b"", app=application, **environ):
    """One request through the project's WSGI entry point, as gunicorn or granian make it."""
    env = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.7",
        "HTTP_HOST": "127.0.0.1",
        "CONTENT_LENGTH": str(len(body)) if body else "",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
        **environ,
    }
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"] = int(status.split()[0])
        seen["headers"] = dict(headers)

    chunks = app(env, start_response)
    try:
        content = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    return seen["status"], seen["headers"], content


@pytest.mark.django_db
def test_a_callback_is_stored_and_answered_like_the_view(client):
    account = ProviderAccountFactory(kind="esms")
    path = f"/webhooks/{account.webhook_token}/"

    status, headers, body = call(path, esms_query("s1"), HTTP_X_REQUEST_ID="abc-123")
    assert status == 200
    assert json.loads(body) == {"status": "received"}
    assert headers["X-Request-ID"] == "abc-123"
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Content-Type-Options"] == "nosniff"
    fast = WebhookEvent.objects.get()
    assert fast.account_id == account.pk
    assert fast.method == "GET"
    assert fast.query == esms_query("s1")
    assert fast.remote_addr == "203.0.113.7"
    assert fast.dedupe_key.startswith("esms:")

    # The same callback through Django's own view: the same answer, a duplicate row.
    r = client.get(path + "?" + esms_query("s1"), REMOTE_ADDR="203.0.113.7")
    assert r.status_code == 200 and r.json() == {"status": "duplicate"}
    # And once more through the fast path.
    status, _h, body = call(path, esms_query("s1"))
    assert (status, json.loads(body)) == (200, {"status": "duplicate"})
    dupes = WebhookEvent.objects.filter(outcome=OUT.DUPLICATE)
    assert dupes.count() == 2
    assert set(dupes.values_list("outcome_detail", flat=True)) == {fast.dedupe_key}
    # A different status for the same message is a new event.
    assert json.loads(call(path, esms_query("s1", status="3"))[2]) == {"status": "received"}
    assert WebhookEvent.objects.count() == 4


@pytest.mark.django_db
def test_a_malformed_callback_is_refused_with_400_and_kept():
    account = ProviderAccountFactory(kind="esms")
    status, _h, body = call(f"/webhooks/{account.webhook_token}/", "SendStatus=5")
    assert status == 400
    assert json.loads(body)["status"] == "rejected"
    ev = WebhookEvent.objects.get()
    assert ev.outcome == OUT.REJECTED and "SMSID" in ev.outcome_detail
    # Query strings with more fields than Django accepts are refused the same way.
    status, _h, body = call(
        f"/webhooks/{account.webhook_token}/", "&".join(f"f{i}=1" for i in range(1001))
    )
    assert status == 400 and "Too many" in json.loads(body)["error"]


@pytest.mark.django_db
def test_utf8_sent_unescaped_is_read_as_utf8():
    account = ProviderAccountFactory(kind="esms")
    raw = "SMSID=s9&SendStatus=5&RequestId=r9&error_info=Tin nhắn".encode()
    status, _h, _b = call(f"/webhooks/{account.webhook_token}/", raw.decode("latin-1"))
    assert status == 200
    assert WebhookEvent.objects.get().query.endswith("Tin nhắn")


@pytest.mark.django_db
def test_what_the_fast_path_does_not_handle_goes_to_django():
    account = ProviderAccountFactory(kind="esms")
    path = f"/webhooks/{account.webhook_token}/"
    # unknown and malformed tokens: Django's 404, byte for byte
    for bad in ("/webhooks/nope/", "/webhooks/a\x00b/"):
        status, _h, body = call(bad, esms_query("s1"))
        assert status == 404, bad
        assert json.loads(body) == {"error": "not found"}
    assert call("/webhooks/x/y/", esms_query("s1"))[0] == 404  # no such URL at all
    # an inactive account
    account.is_active = False
    account.save()
    assert call(path, esms_query("s1"))[0] == 404
    account.is_active = True
    account.save()
    # a Host that is not allowed: Django's 400
    assert call(path, esms_query("s1"), HTTP_HOST="evil.example")[0] == 400
    # another method: the view's 405
    assert call(path, method="PUT")[0] == 405
    # a body over the limit: 413 from the view, stored as rejected
    big = b"x" * (256 * 1024 + 1)
    status, _h, _b = call(path, method="POST", body=big, CONTENT_TYPE="application/json")
    assert status == 413
    assert WebhookEvent.objects.filter(outcome=OUT.REJECTED).count() == 1
    # Plain HTTP where HTTPS is required goes to Django (whose security middleware redirects);
    # behind the proxy that says it was HTTPS, the fast path answers, with HSTS.
    handed = []

    def django_stub(environ, start_response):
        handed.append(environ["PATH_INFO"])
        start_response("301 Moved Permanently", [("Location", "https://x" + environ["PATH_INFO"])])
        return [b""]

    with override_settings(
        SECURE_SSL_REDIRECT=True,
        SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
        SECURE_HSTS_SECONDS=3600,
    ):
        fast = WebhookFastPath(django_stub)
        assert call(path, esms_query("s2"), app=fast)[0] == 301
        assert handed == [path]
        status, headers, _b = call(path, esms_query("s2"), app=fast, HTTP_X_FORWARDED_PROTO="https")
        assert status == 200 and handed == [path]
        assert headers["Strict-Transport-Security"].startswith("max-age=3600")
    assert WebhookEvent.objects.filter(outcome=OUT.RECEIVED).count() == 1


@pytest.mark.django_db
def test_a_throttled_address_gets_429_even_with_a_good_token():
    account = ProviderAccountFactory(kind="esms")
    with override_settings(LOA_WEBHOOK_NOT_FOUND_LIMIT=3):
        for i in range(3):
            assert call(f"/webhooks/guess{i}/", REMOTE_ADDR="192.0.2.50")[0] == 404
        status, headers, _b = call(
            f"/webhooks/{account.webhook_token}/", esms_query("s1"), REMOTE_ADDR="192.0.2.50"
        )
    assert status == 429 and int(headers["Retry-After"]) > 0
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db
def test_a_database_failure_is_a_503_not_a_500(monkeypatch):
    account = ProviderAccountFactory(kind="esms")

    def down(event):
        raise OperationalError("connection refused")

    monkeypatch.setattr(intake.writer, "store", down)
    status, _h, body = call(f"/webhooks/{account.webhook_token}/", esms_query("s1"))
    assert status == 503
    assert json.loads(body)["status"] == "unavailable"


def _store_concurrently(account, keys: list[str]) -> list[bool | BaseException]:
    """Store one event per key from as many threads at once, through the group commit."""
    results: list = [None] * len(keys)
    barrier = threading.Barrier(len(keys))

    def run(i, key):
        try:
            barrier.wait()
            results[i] = intake.writer.store(
                intake.event_row(
                    account_id=account.pk, method="GET", query=f"k={key}", dedupe_key=key
                )
            )
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, k)) for i, k in enumerate(keys)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_callbacks_share_commits_and_each_is_stored_once():
    account = ProviderAccountFactory(kind="esms")
    WebhookEvent.objects.create(account=account, method="GET", dedupe_key="k-old")
    # 40 threads: 30 distinct keys, 9 of them sent twice, one already stored
    keys = [f"k{i}" for i in range(30)] + [f"k{i}" for i in range(9)] + ["k-old"]
    results = _store_concurrently(account, keys)
    assert not [r for r in results if isinstance(r, BaseException)]
    assert sum(1 for r in results if r is True) == 30
    assert WebhookEvent.objects.filter(outcome=OUT.RECEIVED).count() == 31  # with k-old
    dupes = WebhookEvent.objects.filter(outcome=OUT.DUPLICATE)
    assert dupes.count() == 10
    assert sorted(dupes.values_list("outcome_detail", flat=True)) == sorted(
        [f"k{i}" for i in range(9)] + ["k-old"]
    )
    # Every request is stored: 41 rows in all.
    assert WebhookEvent.objects.count() == 41


@pytest.mark.django_db(transaction=True)
def test_one_row_the_database_refuses_fails_only_its_own_request():
    account = ProviderAccountFactory(kind="esms")
    original = intake._insert_rows
    calls = []

    def flaky(events, *, returning):
        calls.append(len(events))
        # The batch that contains the poisoned row fails as a whole, as PostgreSQL would.
        if any(ev["dedupe_key"] == "poison" for ev in events):
            raise OperationalError("value refused")
        return original(events, returning=returning)

    intake._insert_rows = flaky
    try:
        results = _store_concurrently(account, [f"ok{i}" for i in range(12)] + ["poison"])
    finally:
        intake._insert_rows = original
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1
    assert WebhookEvent.objects.filter(outcome=OUT.RECEIVED).count() == 12
    assert set(WebhookEvent.objects.values_list("dedupe_key", flat=True)) == {
        f"ok{i}" for i in range(12)
    }


@pytest.mark.django_db
def test_a_burst_queues_one_applier_task_not_one_per_trigger(
    monkeypatch, settings, django_capture_on_commit_callbacks
):
    from webhooks import services

    queued = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, **kw: queued.append(func))
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": False}
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(5):
            services._last_trigger[0] = 0.0  # past the per-process throttle each time
            services._trigger_applier()
    assert queued == ["webhooks.tasks.webhook_apply_task"]
    # The task clears the flag when it starts: the next burst queues one more.
    cache.delete(services.APPLY_PENDING_KEY)
    with django_capture_on_commit_callbacks(execute=True):
        services._last_trigger[0] = 0.0
        services._trigger_applier()
    assert len(queued) == 2
