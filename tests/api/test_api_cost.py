"""What one API message costs: the request (checks + its one-recipient campaign) and the engine's
driver run that sends it, in queries; a bound that fails if a change makes either grow."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns.api.intake import intake_process
from campaigns.api.models import ApiMessage
from campaigns.engine.driver import DriveResult, campaign_drive

PARAMS = {"customer_name": "Lan", "order_code": "DH1"}


@pytest.mark.django_db
def test_a_post_is_one_statement_on_postgresql_and_the_worker_makes_the_message(
    api, template, monkeypatch
):
    body = {"template_id": template.pk, "phone": "0912345678", "params": PARAMS}
    api.post("/api/v1/messages", body, content_type="application/json")  # warm: caches, last_used
    kicks = []
    monkeypatch.setattr("campaigns.api.services.intake_kick", lambda: kicks.append(1))
    with CaptureQueriesContext(connection) as q:
        r = api.post(
            "/api/v1/messages",
            {**body, "phone": "0987654321"},
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY="cost-1",
        )
    assert r.status_code == 202 and kicks == [1]
    sql = [x["sql"] for x in q.captured_queries]
    if connection.vendor == "postgresql":
        # The key, template and channel come from the process's cache; the opt-out, the
        # Idempotency-Key and the insert are one INSERT ... SELECT ... ON CONFLICT.
        assert len(sql) == 1 and "INSERT INTO" in sql[0], sql
    else:
        # SQLite: the same checks as separate statements in one transaction.
        assert len(sql) <= 7 and sum("INSERT INTO" in x for x in sql) == 1, sql
    assert not ApiMessage.objects.filter(pk=r.json()["id"]).exists()
    # The worker makes it: its campaign, message and ApiMessage under the 202's id.
    with CaptureQueriesContext(connection) as q:
        assert intake_process() == 1
    api_message = ApiMessage.objects.select_related("message").get(pk=r.json()["id"])
    assert api_message.message.phone == "84987654321"
    print(f"intake worker, one row: {len(q.captured_queries)} queries")
    assert len(q.captured_queries) <= 20


@pytest.mark.django_db
def test_the_driver_run_of_one_message_is_a_bounded_number_of_queries(api, template):
    r = api.post(
        "/api/v1/messages",
        {"template_id": template.pk, "phone": "0912345678", "params": PARAMS},
        content_type="application/json",
    )
    campaign_id = ApiMessage.objects.get(pk=r.json()["id"]).campaign_id
    with CaptureQueriesContext(connection) as q:
        result = campaign_drive(campaign_id=campaign_id)
    assert result == DriveResult.DONE
    print(f"driver run of one API message: {len(q.captured_queries)} queries")
    # Measured 55 with the sandbox provider, which also delivers its receipt inline here (its
    # callback row, the webhook event, a lease): claim, send, record, complete are about 25.
    assert len(q.captured_queries) <= 60
