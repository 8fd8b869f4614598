"""The 10M-tenant schema (issue 22): the campaign page's two partial indexes exist as declared
(valid, partial, built by migration 0022_scale_... CONCURRENTLY on PostgreSQL, plainly on
SQLite), the pages and selectors that read them answer right, and the attempts table no longer
carries a database constraint to messages (0021_scale_...) while deletes still cascade."""

from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Message, MessageAttempt
from campaigns.selectors.campaign import campaign_failure_reasons, campaign_receipts
from tests.factories import CampaignFactory, ContactFactory, message_for

pytestmark = pytest.mark.django_db


def constraints(table: str) -> dict:
    with connection.cursor() as cur:
        return connection.introspection.get_constraints(cur, table)


def test_partial_indexes_exist_and_are_valid():
    found = constraints(Message._meta.db_table)
    assert found["msg_sent_by_campaign_idx"]["columns"] == ["campaign_id", "sent_at"]
    assert found["msg_failed_by_campaign_idx"]["columns"][:2] == ["campaign_id", "id"]
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute(
                "SELECT c.relname, i.indisvalid, pg_get_expr(i.indpred, i.indrelid)"
                " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " WHERE c.relname IN ('msg_sent_by_campaign_idx', 'msg_failed_by_campaign_idx')"
            )
            rows = {name: (valid, pred) for name, valid, pred in cur.fetchall()}
        assert (
            rows["msg_sent_by_campaign_idx"][0] and "'sent'" in rows["msg_sent_by_campaign_idx"][1]
        )
        assert rows["msg_failed_by_campaign_idx"][0]
        assert "'failed'" in rows["msg_failed_by_campaign_idx"][1]


@pytest.fixture
def campaign():
    campaign = CampaignFactory(status="completed")
    now = timezone.now()
    rows = []
    for i in range(9):
        status = ["sent", "failed", "delivered"][i % 3]
        rows.append(
            message_for(
                campaign,
                ContactFactory(),
                status=status,
                sent_at=now - timedelta(days=2) if status != "failed" else None,
                error_code="-118" if status == "failed" else "",
            )
        )
    Message.objects.bulk_create(rows)
    return campaign


def test_the_pages_the_indexes_serve_answer(admin_client, campaign):
    assert campaign_receipts(campaign=campaign)["no_receipt"] == 3
    reasons = campaign_failure_reasons(campaign=campaign)
    assert [(r["code"], r["count"]) for r in reasons["reasons"]] == [("-118", 3)]
    page = admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert page.status_code == 200
    failed = admin_client.get(
        reverse("admin:campaigns_message_changelist")
        + f"?campaign__id__exact={campaign.pk}&status__exact=failed"
    )
    assert failed.status_code == 200
    assert len(failed.context["cl"].result_list) == 3


def test_attempts_have_no_database_constraint_and_still_cascade(campaign):
    fks = [
        c
        for c in constraints(MessageAttempt._meta.db_table).values()
        if c["foreign_key"] and c["columns"] == ["message_id"]
    ]
    assert fks == []
    message = Message.objects.filter(campaign=campaign).first()
    MessageAttempt.objects.create(message=message, status_code=200)
    message.delete()
    assert not MessageAttempt.objects.filter(message_id=message.pk).exists()
