"""Texts the workers write (history notes, status reasons) are shown in the reader's language."""

import pytest
from django.utils import translation

from campaigns.engine.lifecycle import (
    campaign_pause,
    campaign_resume,
    campaign_set_reason,
    campaign_transition,
)
from campaigns.models import Campaign, CampaignEvent
from campaigns.notes import Note, render
from tests.factories import CampaignFactory, ContactListFactory

pytestmark = pytest.mark.django_db


def test_a_note_written_in_vietnamese_reads_in_english_and_back():
    campaign = CampaignFactory(lists=[ContactListFactory(size=2)], status="running")
    with translation.override("vi"):  # a worker (campaign_check_failure_rate): the site's language
        assert campaign_transition(
            campaign_id=campaign.pk,
            to=Campaign.Status.PAUSED,
            note=Note(
                "Paused automatically: {failed} of {handled} messages failed (over {pct}%). "
                "Check the failures, then resume.",
                failed=30,
                handled=50,
                pct=50,
            ),
        )
    campaign.refresh_from_db()
    event = CampaignEvent.objects.get(campaign=campaign)
    assert "30" in campaign.status_reason and "Paused automatically" not in campaign.status_reason
    with translation.override("en"):
        assert campaign.reason_text().startswith("Paused automatically: 30 of 50 messages failed")
        assert event.note_text() == campaign.reason_text()
    with translation.override("vi"):
        assert campaign.reason_text() == campaign.status_reason


def test_what_a_person_typed_is_kept_as_typed():
    campaign = CampaignFactory(lists=[ContactListFactory(size=1)], status="running")
    campaign_pause(campaign_id=campaign.pk, reason="Chờ khách duyệt lại nội dung")
    campaign.refresh_from_db()
    assert campaign.status_reason_i18n == {}
    with translation.override("en"):
        assert campaign.reason_text() == "Chờ khách duyệt lại nội dung"
    campaign_resume(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert (campaign.status_reason, campaign.status_reason_i18n) == ("", {})


def test_the_campaign_page_and_history_speak_the_readers_language(admin_client):
    campaign = CampaignFactory(lists=[ContactListFactory(size=1)], status="running")
    with translation.override("vi"):
        campaign_set_reason(
            campaign_id=campaign.pk,
            note=Note("Waiting until {when}: {why}", when="01/12/2026 00:05", why="-144"),
        )
        campaign_pause(campaign_id=campaign.pk)
    url = f"/admin/campaigns/campaign/{campaign.pk}/change/"
    english = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Paused by a user" in english
    vietnamese = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="vi").content.decode()
    assert "Paused by a user" not in vietnamese


def test_a_stored_note_that_no_longer_fits_falls_back_to_its_text():
    assert render("văn bản cũ", {"m": "Waiting until {when}: {why}", "a": {}}) == "văn bản cũ"
    assert render("plain", {"m": 5}) == "plain" and render("plain", None) == "plain"
