"""The intake of API messages (campaigns.api.intake): a POST writes one row, the worker makes
the engine's message under the 202's id. Replays and conflicts of an Idempotency-Key on that
row, an opt-out recorded between the 202 and the send (refused by the engine, visible in GET),
a row the worker cannot make (failed on its own, the others made), and the per-process cache
of keys and templates (revocation honoured within LOA_API_CACHE_SECONDS)."""

import pytest
from django.conf import settings
from django.test import override_settings

from campaigns.api.cache import cache_clear
from campaigns.api.intake import intake_process
from campaigns.api.models import ApiIntake, ApiKey, ApiMessage
from campaigns.engine.driver import campaign_drive
from campaigns.models import Message, OptOut
from tests.api.conftest import bearer
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

PARAMS = {"customer_name": "Lan", "order_code": "DH1"}


@pytest.fixture
def no_worker(monkeypatch):
    """The worker not woken by the request (as when the cluster is busy): rows stay pending."""
    kicks = []
    monkeypatch.setattr("campaigns.api.services.intake_kick", lambda: kicks.append(1))
    return kicks


def post(client, body, **headers):
    return client.post("/api/v1/messages", body, content_type="application/json", **headers)


def test_an_accepted_message_is_queued_in_get_before_the_worker_and_keeps_its_id(
    api, template, no_worker
):
    r = post(api, {"template_id": template.pk, "phone": "0912345678", "params": PARAMS})
    assert r.status_code == 202 and no_worker == [1]
    pk = r.json()["id"]
    assert not ApiMessage.objects.exists() and not Message.objects.exists()
    got = api.get(f"/api/v1/messages/{pk}").json()
    assert (got["status"], got["phone"], got["params"]) == ("queued", "84912345678", PARAMS)
    assert [h["status"] for h in got["history"]] == ["queued"]
    assert intake_process() == 1
    api_message = ApiMessage.objects.select_related("message").get(pk=pk)
    assert api_message.message.template_data == PARAMS
    assert ApiIntake.objects.get(pk=pk).state == ApiIntake.State.MADE
    assert api.get(f"/api/v1/messages/{pk}").json()["id"] == pk


def test_replay_and_conflict_of_a_key_on_the_intake_row(api, template, no_worker):
    body = {"template_id": template.pk, "phone": "0912345678", "params": PARAMS}
    first = post(api, body, HTTP_IDEMPOTENCY_KEY="k-1")
    # Replayed before and after the worker made it: the same id, one row, one message.
    again = post(api, body, HTTP_IDEMPOTENCY_KEY="k-1")
    intake_process()
    third = post(api, body, HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == third.status_code == 202
    assert first.json() == again.json() == third.json()
    assert again["Idempotent-Replayed"] == third["Idempotent-Replayed"] == "true"
    other = post(api, {**body, "phone": "0987654321"}, HTTP_IDEMPOTENCY_KEY="k-1")
    assert (other.status_code, other.json()["code"]) == (409, "idempotency_conflict")
    assert ApiIntake.objects.count() == 1 and Message.objects.count() == 1
    # The phone opts out afterwards: the same request still answers its first answer.
    OptOut.objects.create(contact=Message.objects.get().contact, channel_kind="all")
    assert post(api, body, HTTP_IDEMPOTENCY_KEY="k-1").json() == first.json()
    # A new request for that phone is refused, synchronously, and nothing is written.
    r = post(api, body, HTTP_IDEMPOTENCY_KEY="k-2")
    assert (r.status_code, r.json()["code"]) == (422, "opted_out")
    assert ApiIntake.objects.count() == 1


def test_an_opt_out_between_the_202_and_the_send_is_refused_by_the_engine_and_shown_in_get(
    api, template, no_worker
):
    r = post(api, {"template_id": template.pk, "phone": "0912345678", "params": PARAMS})
    assert r.status_code == 202
    pk = r.json()["id"]
    # The person opts out (through the API) before the worker and the engine ran.
    opt_out = api.post(
        "/api/v1/contacts/0912345678/opt-out",
        {"channel_kind": "all"},
        content_type="application/json",
    )
    assert opt_out.status_code in (200, 201), opt_out.content
    intake_process()
    campaign_drive(campaign_id=ApiMessage.objects.get(pk=pk).campaign_id)
    got = api.get(f"/api/v1/messages/{pk}").json()
    assert got["status"] == "rejected" and got["error"]["code"] == "opted_out"
    assert Message.objects.get().attempts == 0  # never sent


def test_a_row_the_worker_cannot_make_fails_alone_and_the_others_are_made(api, template, no_worker):
    ids = [
        post(api, {"template_id": template.pk, "phone": f"091234567{i}", "params": PARAMS}).json()[
            "id"
        ]
        for i in range(3)
    ]
    # The middle row's channel vanished (it is checked by the request, through its cache).
    ApiIntake.objects.filter(pk=ids[1]).update(channel_id=10**12)
    assert intake_process() == 3
    states = dict(ApiIntake.objects.values_list("pk", "state"))
    assert states == {ids[0]: "made", ids[1]: "failed", ids[2]: "made"}
    assert "channel" in ApiIntake.objects.get(pk=ids[1]).error
    assert set(ApiMessage.objects.values_list("pk", flat=True)) == {ids[0], ids[2]}
    got = api.get(f"/api/v1/messages/{ids[1]}").json()
    assert got["status"] == "failed" and got["error"]["code"] == "intake_failed"
    assert [h["status"] for h in got["history"]] == ["queued", "failed"]
    assert intake_process() == 0  # a failed row is not retried forever


@override_settings(LOA={**settings.LOA, "API_CACHE_SECONDS": 5})
def test_a_revocation_elsewhere_is_honoured_within_the_cache_window_and_here_at_once(
    api_key, template, no_worker
):
    key, raw = api_key
    client = bearer(raw)
    body = {"template_id": template.pk, "phone": "0912345678", "params": PARAMS}
    assert post(client, body).status_code == 202
    # Revoked by another process (an UPDATE this process's signals do not see): the key is
    # remembered until LOA_API_CACHE_SECONDS pass (simulated by clearing the cache).
    from django.utils import timezone

    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    assert post(client, body).status_code == 202
    cache_clear()
    assert post(client, body).json()["code"] == "key_revoked"
    # Revoked in this process (a save): forgotten at once.
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=None)
    cache_clear()
    assert post(client, body).status_code == 202
    key.refresh_from_db()
    key.revoked_at = timezone.now()
    key.save()
    assert post(client, body).json()["code"] == "key_revoked"


def test_a_new_contact_is_made_by_the_worker_and_an_existing_one_reused(api, template, no_worker):
    known = ContactFactory(phone="84912345678")
    post(api, {"template_id": template.pk, "phone": "0912345678", "params": PARAMS})
    post(api, {"template_id": template.pk, "phone": "0987654321", "params": PARAMS})
    assert intake_process() == 2
    by_phone = {m.phone: m.contact for m in Message.objects.select_related("contact")}
    assert by_phone["84912345678"] == known
    assert by_phone["84987654321"].source == "api:Shop A"


def test_an_api_message_made_without_an_id_never_takes_an_accepted_id(
    postgres_only, api, app, template, no_worker
):
    from tests.api.callback_fixtures import api_message_for

    pending = post(api, {"template_id": template.pk, "phone": "0912345678", "params": PARAMS})
    # Made elsewhere (a fixture, a shell): on PostgreSQL it draws from the intake's ids.
    other = api_message_for(app, client_reference="elsewhere")
    assert other.pk != pending.json()["id"]
    assert intake_process() == 1
    assert ApiIntake.objects.get(pk=pending.json()["id"]).state == ApiIntake.State.MADE


def test_made_rows_past_the_idempotency_window_are_purged_and_failed_rows_kept(
    api, template, no_worker
):
    from datetime import timedelta

    from django.utils import timezone

    from campaigns.api.intake import intake_purge

    ids = [
        post(api, {"template_id": template.pk, "phone": f"091234567{i}", "params": PARAMS}).json()[
            "id"
        ]
        for i in range(3)
    ]
    ApiIntake.objects.filter(pk=ids[2]).update(channel_id=10**12)  # will fail
    intake_process()
    old = timezone.now() - timedelta(hours=25)
    ApiIntake.objects.filter(pk__in=[ids[0], ids[2]]).update(created_at=old)
    assert intake_purge() == 1
    assert set(ApiIntake.objects.values_list("pk", flat=True)) == {ids[1], ids[2]}
    # The purged row's message answers as before.
    assert api.get(f"/api/v1/messages/{ids[0]}").json()["id"] == ids[0]
