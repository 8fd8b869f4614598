"""Erase a person from the contact page in a real browser: the "Erase this person" button, the
confirmation page's text (what is erased, what Loa cannot erase), the erase, the contact page
afterwards (only the token left, no erase button). Screenshot: docs/screenshots/erase-confirm.png."""

import pytest

from campaigns.models import Contact, Message
from campaigns.privacy.erasure import contact_token, phone_token
from tests.browser.conftest import CHROMIUM, PASSWORD, login, shot
from tests.factories import CampaignFactory, UserFactory, message_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_erase_this_person_from_the_contact_page(page, settings, tmp_path):
    assert CHROMIUM
    settings.MEDIA_ROOT = tmp_path
    UserFactory(username="boss", password=PASSWORD, is_staff=True, is_superuser=True)
    contact = Contact.objects.create(
        phone="84389123457", name="Phạm Thị Xoá", attributes={"city": "Huế"}
    )
    campaign = CampaignFactory()
    Message.objects.bulk_create([message_for(campaign, contact, status="delivered", fee=300)])

    login(page, "boss")
    page.goto(f"/admin/campaigns/contact/{contact.pk}/change/")
    page.click("#contact-erase")
    page.wait_for_selector("#erase-form")
    what = page.inner_text("#erase-what")
    cannot = page.inner_text("#erase-cannot")
    assert "irreversible token" in what and "1 message" in what
    assert "import files" in what
    assert "What Loa cannot erase" in cannot
    assert (
        "providers' own records" in cannot and "already delivered to the person's phone" in cannot
    )
    assert "cannot be undone" in page.inner_text("#content-main")
    shot(page, "erase-confirm")

    page.click("#erase-submit")
    page.wait_for_selector(".messagelist")
    assert "The person was erased" in page.inner_text(".messagelist")
    token = contact_token(phone_token("84389123457"))
    assert token in page.content()
    assert "Phạm Thị Xoá" not in page.content()
    assert page.locator("#contact-erase").count() == 0
    contact.refresh_from_db()
    assert contact.is_erased and contact.name == ""
    assert Message.objects.get().fee == 300
