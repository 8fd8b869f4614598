"""Idempotency-Key: the same key with the same body answers the first answer (one message); a
different body is a 409; requests in parallel with one key make one message (PostgreSQL, real
threads and connections)."""

import json
import threading

import pytest
from django.db import connection

from campaigns.api.models import ApiIntake, ApiMessage, IdempotencyRecord
from campaigns.models import Message
from tests.api.conftest import bearer

pytestmark = pytest.mark.django_db(transaction=True)

PARAMS = {"customer_name": "Lan", "order_code": "DH1"}


def _post(client, body, key):
    return client.post(
        "/api/v1/messages", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY=key
    )


def test_the_same_key_and_body_answer_the_first_answer_and_another_body_is_409(api, template):
    body = {"template_id": template.pk, "phone": "0912345678", "params": PARAMS}
    first = _post(api, body, "order-42")
    assert first.status_code == 202
    # Same body, keys in another order: the same request.
    again = _post(api, dict(reversed(list(body.items()))), "order-42")
    assert again.status_code == 202 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert ApiMessage.objects.count() == 1 and Message.objects.count() == 1

    other = _post(api, {**body, "phone": "0987654321"}, "order-42")
    assert (other.status_code, other.json()["code"]) == (409, "idempotency_conflict")
    assert ApiMessage.objects.count() == 1
    # Another key is another message.
    assert _post(api, body, "order-43").status_code == 202
    assert ApiMessage.objects.count() == 2


def test_a_refusal_is_remembered_too_and_keys_belong_to_one_application(api, template, app):
    body = {"template_id": template.pk, "phone": "123", "params": PARAMS}
    r1 = _post(api, body, "k1")
    r2 = _post(api, body, "k1")
    assert r1.status_code == r2.status_code == 422
    assert r1.json() == r2.json() and r2["Idempotent-Replayed"] == "true"
    assert IdempotencyRecord.objects.get(key="k1").response_status == 422


def test_a_bad_idempotency_key_is_refused(api, template):
    body = {"template_id": template.pk, "phone": "0912345678", "params": PARAMS}
    r = _post(api, body, "x" * 300)
    assert r.status_code == 422 and r.json()["code"] in (
        "invalid_request",
        "invalid_idempotency_key",
    )
    r = _post(api, body, "ключ")  # not ASCII
    assert (r.status_code, r.json()["code"]) == (422, "invalid_idempotency_key")


def test_parallel_requests_with_one_key_make_one_message(postgres_only, app, api_key, template):
    raw = api_key[1]
    body = {"template_id": template.pk, "phone": "0912345678", "params": PARAMS}
    barrier = threading.Barrier(6)
    answers = []

    def call():
        try:
            client = bearer(raw)
            barrier.wait()
            r = _post(client, body, "parallel-1")
            answers.append((r.status_code, r.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 6
    assert {s for s, _b in answers} == {202}
    assert len({b["id"] for _s, b in answers}) == 1
    assert ApiMessage.objects.count() == 1 and Message.objects.count() == 1


def test_a_key_still_being_answered_is_409_in_progress(api, template, app, monkeypatch):
    from campaigns.api import services

    body = {"template_id": template.pk, "phone": "0912345678", "params": PARAMS}
    raw = json.dumps(body).encode()
    IdempotencyRecord.objects.create(
        application=app, key="slow-1", body_sha256=services.body_digest(raw)
    )
    monkeypatch.setattr(services, "IDEMPOTENCY_WAIT", 0.2)
    r = _post(api, body, "slow-1")
    assert (r.status_code, r.json()["code"]) == (409, "idempotency_in_progress")
    assert not Message.objects.exists()


def test_a_crash_is_a_json_500_and_queues_nothing(api, template, monkeypatch):
    def boom(**kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr("campaigns.api.services.message_send", boom)
    r = api.post(
        "/api/v1/messages",
        {"template_id": template.pk, "phone": "0912345678", "params": PARAMS},
        content_type="application/json",
    )
    assert (r.status_code, r.json()["code"]) == (500, "internal_error")
    assert not Message.objects.exists()


def test_a_key_older_than_the_window_is_new_again(api, template):
    from datetime import timedelta

    from django.utils import timezone

    body = {"template_id": template.pk, "phone": "0912345678", "params": PARAMS}
    first = _post(api, body, "day-old")
    # The key of an accepted single POST lives on its intake row (campaigns.api.intake).
    ApiIntake.objects.filter(idempotency_key="day-old").update(
        created_at=timezone.now() - timedelta(hours=25)
    )
    again = _post(api, {**body, "phone": "0987654321"}, "day-old")
    assert again.status_code == 202 and again.json()["id"] != first.json()["id"]
    assert ApiMessage.objects.count() == 2
