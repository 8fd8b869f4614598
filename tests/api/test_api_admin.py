# ruff: noqa: F811 (the fixtures imported from callback_fixtures are used as arguments)
"""The API's admin pages beside campaigns: the overview (per application and day, counts by
status and cost), the message search (phone in any format, client reference), the callbacks'
delivery log and its "resend" action, through the admin client."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.api.callbacks.services import callbacks_send_due
from campaigns.api.models import ApiApplication, ApiMessage, CallbackDelivery
from campaigns.engine.delivery import messages_apply_events
from providers.base import EventStatus, StatusEvent
from templates_app.formatting import format_vnd
from tests.api.callback_fixtures import (  # noqa: F401 (fixtures)
    api_message_for,
    application,
    receiver,
)
from tests.api.receiver import site_text
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]


@pytest.fixture(autouse=True)
def _pages_in_english(client):
    """The pages' text is read in English (the project's default language is Vietnamese)."""
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"


OVERVIEW = "admin:api_overview"


@pytest.fixture
def traffic(application):
    """Shop Callbacks today: 2 delivered (300 ₫ each), 1 failed, 1 opted out (rejected);
    yesterday 1 read (500 ₫). Shop B today: 1 queued."""
    a = [
        api_message_for(application, status="delivered", fee=Decimal("300"), client_reference="A1"),
        api_message_for(application, status="delivered", fee=Decimal("300"), client_reference="A2"),
        api_message_for(application, status="failed", client_reference="A3", phone="84901888484"),
        api_message_for(application, status="skipped", client_reference="A4"),
    ]
    old = api_message_for(application, status="read", fee=Decimal("500"), client_reference="A0")
    ApiMessage.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=1))
    other = ApiApplication.objects.create(name="Shop B")
    b = api_message_for(other, status="pending", client_reference="B1")
    return {"a": a, "old": old, "b": b, "other": other}


def _rows(response):
    return {(r.application, r.day): r for r in response.context["rows"]}


def test_overview_counts_each_application_per_day_by_status_with_its_cost(admin_client, traffic):
    r = admin_client.get(reverse(OVERVIEW))
    assert r.status_code == 200
    rows = _rows(r)
    today = timezone.localdate()
    shop_a = rows[("Shop Callbacks", today)]
    assert shop_a.counts == {"delivered": 2, "failed": 1, "rejected": 1}
    assert shop_a.total == 4 and shop_a.cost == Decimal("600")
    yesterday = rows[("Shop Callbacks", today - timedelta(days=1))]
    assert yesterday.counts == {"read": 1} and yesterday.cost == Decimal("500")
    assert rows[("Shop B", today)].counts == {"queued": 1}
    page = r.content.decode()
    assert format_vnd(Decimal("600")) in page and format_vnd(Decimal("1100")) in page  # + total
    assert "Per application and day, last 14 days" in page

    only_b = admin_client.get(reverse(OVERVIEW), {"application": traffic["other"].pk, "days": 7})
    assert set(_rows(only_b)) == {("Shop B", today)}


def test_search_by_phone_in_any_format_and_by_client_reference(admin_client, traffic):
    failed = traffic["a"][2]
    for term in ("0901 888 484", "+84901888484", "84901888484", "A3"):
        r = admin_client.get(reverse(OVERVIEW), {"q": term})
        assert [m.pk for m in r.context["results"]] == [failed.pk], term
        detail = reverse("admin:campaigns_message_change", args=[failed.message_id])
        assert f'href="{detail}"' in r.content.decode()
    rejected = admin_client.get(reverse(OVERVIEW), {"q": "A4"})
    assert '<td class="api-status">Rejected</td>' in rejected.content.decode()
    r = admin_client.get(reverse(OVERVIEW), {"q": "no-such-ref"})
    assert r.context["results"] == [] and "No API message matches." in r.content.decode()
    # The message's page the result links to opens.
    detail = reverse("admin:campaigns_message_change", args=[failed.message_id])
    assert admin_client.get(detail).status_code == 200


def test_bad_parameters_are_ignored_not_a_500(admin_client, traffic):
    r = admin_client.get(reverse(OVERVIEW), {"days": "abc", "application": "x' OR 1=1", "q": ""})
    assert r.status_code == 200 and r.context["days"] == 14 and r.context["results"] is None


def test_overview_needs_a_permission_and_the_index_links_it(admin_client, client, traffic):
    index = admin_client.get(reverse("admin:index")).content.decode()
    assert reverse(OVERVIEW) in index
    staff = UserFactory(is_staff=True)
    client.force_login(staff)
    assert client.get(reverse(OVERVIEW)).status_code == 403
    assert reverse(OVERVIEW) not in client.get(reverse("admin:index")).content.decode()


def _failed_callback(application, receiver):
    am = api_message_for(application, client_reference="R-1")
    messages_apply_events(items=[(am.message_id, StatusEvent(status=EventStatus.DELIVERED))])
    receiver.script = [500]
    callbacks_send_due()
    row = CallbackDelivery.objects.get()
    late = row.created_at + timedelta(hours=24, minutes=1)
    CallbackDelivery.objects.filter(pk=row.pk).update(next_attempt_at=late - timedelta(hours=1))
    receiver.script = [500]
    callbacks_send_due(now=late)
    row.refresh_from_db()
    assert row.given_up_at is not None
    return row


def test_delivery_log_is_read_only_and_filters_by_state(
    admin_client, application, receiver, english
):
    # The sender's threads write errors in the site's language (settings.LANGUAGE_CODE).
    row = _failed_callback(application, receiver)
    url = reverse("admin:api_callbackdelivery_changelist")
    r = admin_client.get(url, {"state": "given_up", "application__id__exact": application.pk})
    assert r.status_code == 200
    page = r.content.decode()
    assert site_text("The client answered HTTP {code}.").format(code=500) in page
    assert "Given up" in page
    assert list(r.context["cl"].result_list) == [row]
    assert list(admin_client.get(url, {"state": "delivered"}).context["cl"].result_list) == []
    for term in ("R-1", str(row.api_message_id)):
        assert list(admin_client.get(url, {"q": term}).context["cl"].result_list) == [row]
    assert list(admin_client.get(url, {"q": "nothing' OR 1=1"}).context["cl"].result_list) == []
    assert list(admin_client.get(url, {"status": "delivered"}).context["cl"].result_list) == [row]
    detail = admin_client.get(reverse("admin:api_callbackdelivery_change", args=[row.pk]))
    assert detail.status_code == 200 and b'name="_save"' not in detail.content
    assert reverse(OVERVIEW) in page  # the log links the overview


def test_resend_action_requeues_and_the_client_gets_it(admin_client, application, receiver):
    row = _failed_callback(application, receiver)
    url = reverse("admin:api_callbackdelivery_changelist")
    r = admin_client.post(url, {"action": "resend", "_selected_action": [row.pk]}, follow=True)
    assert "1 callback queued to be sent again now" in r.content.decode()
    row.refresh_from_db()
    assert row.given_up_at is None and row.attempts == 0 and row.next_attempt_at is not None
    assert row.retry_until > timezone.now() + timedelta(hours=23)
    assert callbacks_send_due().delivered == 1
    assert len(receiver.received) == 3  # 2 failed attempts, then the resend


def test_resend_says_when_an_application_has_no_url(admin_client, application, receiver):
    row = _failed_callback(application, receiver)
    ApiApplication.objects.filter(pk=application.pk).update(callback_url="")
    r = admin_client.post(
        reverse("admin:api_callbackdelivery_changelist"),
        {"action": "resend", "_selected_action": [row.pk]},
        follow=True,
    )
    page = r.content.decode()
    assert "1 callback was not queued: its application has no callback URL." in page
    assert "queued to be sent again" not in page
    row.refresh_from_db()
    assert row.given_up_at is not None


def test_overview_shows_callbacks_needing_attention(admin_client, application, receiver):
    _failed_callback(application, receiver)
    r = admin_client.get(reverse(OVERVIEW))
    [health] = r.context["callbacks"]
    assert (health.application, health.given_up, health.delivered) == ("Shop Callbacks", 1, 0)
    log = reverse("admin:api_callbackdelivery_changelist")
    assert f"{log}?application__id__exact={application.pk}&amp;state=given_up" in r.content.decode()
