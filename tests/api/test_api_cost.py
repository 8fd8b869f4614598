"""What one API message costs: the request (checks + its one-recipient campaign) and the engine's
driver run that sends it, in queries; a bound that fails if a change makes either grow."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns.api.models import ApiMessage
from campaigns.engine.driver import DriveResult, campaign_drive

PARAMS = {"customer_name": "Lan", "order_code": "DH1"}


@pytest.mark.django_db
def test_a_post_is_a_bounded_number_of_queries(api, template):
    body = {"template_id": template.pk, "phone": "0912345678", "params": PARAMS}
    api.post("/api/v1/messages", body, content_type="application/json")  # warm: last_used_at
    with CaptureQueriesContext(connection) as q:
        r = api.post(
            "/api/v1/messages", {**body, "phone": "0987654321"}, content_type="application/json"
        )
    assert r.status_code == 202
    # key, channels (2), template, channel, params, contact, then in one transaction: contact,
    # campaign, its history row, message, API message (+ savepoints and the driver's queue row
    # once committed, not here: the test's transaction never commits).
    assert len(q.captured_queries) <= 20, [x["sql"][:80] for x in q.captured_queries]


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
