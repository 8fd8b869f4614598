"""What the intake reads and keeps: chunked bodies are read (never stored empty), refused
requests keep a capped prefix with the whole body's hash and length, and refused requests are
limited per account (accepted callbacks never are). Through the project's WSGI entry point (the
fast path) and through Django's view."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from django.test import override_settings
from django.urls import reverse

from campaigns.models import Campaign, Message
from config.wsgi import application
from tests.factories import CampaignFactory, ContactFactory, ProviderAccountFactory, message_for
from webhooks.models import WebhookEvent
from webhooks.services import MAX_BODY

REFUSED_KEEP = 4096  # what a refused request keeps of its body (webhooks.services)

pytestmark = pytest.mark.django_db(transaction=True)
OUT = WebhookEvent.Outcome


@pytest.fixture(autouse=True)
def fresh(fast_path_fresh):
    """Every test here calls the fast path (tests/webhooks/conftest.py)."""


def wsgi(path: str, body: bytes, *, chunked: bool, terminated: bool = True, **environ):
    """One POST through config.wsgi as gunicorn/granian hand it over: a chunked body arrives
    de-chunked on wsgi.input, without CONTENT_LENGTH, with wsgi.input_terminated."""
    env = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.7",
        "HTTP_HOST": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
        "wsgi.input_terminated": terminated,
    }
    if chunked:
        env["HTTP_TRANSFER_ENCODING"] = "chunked"
    else:
        env["CONTENT_LENGTH"] = str(len(body))
    env.update(environ)
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"] = int(status.split()[0])
        seen["headers"] = dict(headers)

    content = b"".join(application(env, start_response))
    return seen["status"], seen["headers"], content


def sandbox_message():
    account = ProviderAccountFactory(kind="sandbox")
    campaign = CampaignFactory(channel__account=account)
    contact = ContactFactory()
    m = message_for(campaign, contact, status="sent", provider_message_id="pm-1")
    m.save()
    Campaign.objects.filter(pk=campaign.pk).update(status="running", sent_count=1)
    return account, m


def delivered(m: Message) -> bytes:
    return json.dumps({"msg_id": m.provider_message_id, "status": "delivered"}).encode()


def url(account) -> str:
    return reverse("webhooks:receive", args=[account.webhook_token])


# ---- Transfer-Encoding: chunked ---------------------------------------------------------------


def test_chunked_callback_is_read_and_applied_by_the_fast_path():
    account, m = sandbox_message()
    body = delivered(m)
    status, _h, content = wsgi(url(account), body, chunked=True)
    assert status == 200, content
    event = WebhookEvent.objects.get()
    assert event.body == body.decode() and event.outcome == OUT.APPLIED
    m.refresh_from_db()
    assert m.status == "delivered"


def test_chunked_callback_is_read_and_applied_by_the_django_view(client):
    account, m = sandbox_message()
    body = delivered(m)
    r = client.post(
        url(account),
        body,
        content_type="application/json",
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
        # As a server streams it: a read past the end returns what is left, not an error.
        **{"wsgi.input_terminated": True, "wsgi.input": io.BytesIO(body)},
    )
    assert r.status_code == 200, r.content
    assert WebhookEvent.objects.get().body == body.decode()
    m.refresh_from_db()
    assert m.status == "delivered"


def test_chunked_callback_from_a_server_that_does_not_end_the_stream_is_answered_411(client):
    """Without wsgi.input_terminated the end of the body cannot be found: 411, so the provider
    retries (with a length), instead of a 400 and a row with an empty body."""
    account, m = sandbox_message()
    status, _h, _c = wsgi(url(account), delivered(m), chunked=True, terminated=False)
    assert status == 411
    r = client.post(
        url(account),
        delivered(m),
        content_type="application/json",
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
    )
    assert r.status_code == 411
    assert not WebhookEvent.objects.filter(body="").exists()


def test_chunked_body_over_the_cap_is_refused_413_with_a_prefix_kept():
    account, _m = sandbox_message()
    body = b'{"pad": "' + b"x" * (MAX_BODY + 100) + b'"}'
    status, _h, _c = wsgi(url(account), body, chunked=True)
    assert status == 413
    event = WebhookEvent.objects.get()
    assert event.outcome == OUT.REJECTED and len(event.body) == REFUSED_KEEP
    assert "more than" in event.outcome_detail


# ---- refused requests: capped, and limited per account ------------------------------------------


def test_refused_request_keeps_a_4_kib_prefix_with_the_hash_and_length_of_the_whole(client):
    """300 refused non-JSON bodies of 253 KiB added 80.8 MB in 5 s: each kept whole."""
    account, _m = sandbox_message()
    body = b"not json " * (253 * 1024 // 9)
    r = client.post(url(account), body, content_type="application/json")
    assert r.status_code == 400
    event = WebhookEvent.objects.get()
    assert event.outcome == OUT.REJECTED
    assert event.body == body[:REFUSED_KEEP].decode()
    assert hashlib.sha256(body).hexdigest() in event.outcome_detail
    assert f"{len(body):,} bytes" in event.outcome_detail
    assert "not JSON" in event.outcome_detail


@override_settings(LOA_WEBHOOK_REFUSED_LIMIT=5, LOA_WEBHOOK_REFUSED_WINDOW=600)
def test_refused_requests_are_limited_per_account_and_good_callbacks_never(client):
    account, m = sandbox_message()
    other, _m2 = sandbox_message()
    answers = [client.post(url(account), b"junk", content_type="text/plain") for _ in range(8)]
    assert [a.status_code for a in answers] == [400] * 5 + [429] * 3
    assert 0 < int(answers[-1]["Retry-After"]) <= 600
    assert WebhookEvent.objects.filter(account=account).count() == 5
    # the fast path answers the same
    status, headers, _c = wsgi(url(account), b"junk", chunked=False)
    assert status == 429 and int(headers["Retry-After"]) > 0
    # a good callback of the same account is stored and applied, as many as come
    for _ in range(3):
        assert (
            client.post(url(account), delivered(m), content_type="application/json").status_code
            == 200
        )
    m.refresh_from_db()
    assert m.status == "delivered"
    # another account has its own budget
    assert client.post(url(other), b"junk", content_type="text/plain").status_code == 400
