"""GET /api/v1/templates, POST /api/v1/contacts (upsert), POST /api/v1/contacts/{phone}/opt-out."""

import pytest

from campaigns.models import Contact, OptOut
from templates_app.models import Template, TemplateParam
from tests.api.conftest import bearer, make_key
from tests.factories import ChannelFactory, TemplateFactory

pytestmark = pytest.mark.django_db


def test_templates_lists_the_approved_ones_this_key_can_send_with_their_rules(api, template, app):
    TemplateParam.objects.filter(template=template, name="order_code").update(
        param_type="code", max_length=12
    )
    TemplateFactory(account=template.account, status=Template.Status.REJECTED)
    TemplateFactory()  # an account without a channel
    results = api.get("/api/v1/templates").json()["results"]
    assert [t["id"] for t in results] == [template.pk]
    t = results[0]
    assert t["channel_ids"] == [ChannelFactory._meta.model.objects.get().pk]
    assert t["tag"] == "transaction" and t["price"] == 300.0
    assert t["params"][1] == {
        "name": "order_code",
        "type": "code",
        "required": True,
        "min_length": 0,
        "max_length": 12,
    }
    # A key limited to another channel sees none of them.
    other = ChannelFactory(kind="sms", official_account=None)
    key, raw = make_key(app)
    key.channels.set([other])
    assert bearer(raw).get("/api/v1/templates").json()["results"] == []


def test_contacts_are_upserted_by_their_normalized_phone(api):
    r = api.post(
        "/api/v1/contacts",
        {"phone": "0912 345 678", "name": "Lan", "attributes": {"tier": "gold"}},
        content_type="application/json",
    )
    assert r.status_code == 201 and r.json()["created"] is True
    assert r.json()["phone"] == "84912345678"
    r = api.post(
        "/api/v1/contacts",
        {"phone": "+84912345678", "attributes": {"city": "Huế"}},
        content_type="application/json",
    )
    assert r.status_code == 200 and r.json()["created"] is False
    c = Contact.objects.get()
    assert c.name == "Lan" and c.attributes == {"tier": "gold", "city": "Huế"}
    r = api.post("/api/v1/contacts", {"phone": "12"}, content_type="application/json")
    assert (r.status_code, r.json()["code"]) == (422, "invalid_phone")


def test_an_opt_out_by_phone_is_recorded_once_and_honoured_by_sends(api, template):
    r = api.post(
        "/api/v1/contacts/0912345678/opt-out",
        {"channel_kind": "zalo_zns", "reason": "STOP"},
        content_type="application/json",
    )
    assert r.status_code == 201 and r.json()["phone"] == "84912345678"
    r = api.post(
        "/api/v1/contacts/+84912345678/opt-out",
        {"channel_kind": "zalo_zns"},
        content_type="application/json",
    )
    assert r.status_code == 200 and r.json()["created"] is False
    o = OptOut.objects.get()
    assert (o.source, o.reason) == ("api", "STOP")
    r = api.post(
        "/api/v1/messages",
        {
            "template_id": template.pk,
            "phone": "0912345678",
            "params": {"customer_name": "A", "order_code": "B"},
        },
        content_type="application/json",
    )
    assert (r.status_code, r.json()["code"]) == (422, "opted_out")
    r = api.post(
        "/api/v1/contacts/abc/opt-out", {"channel_kind": "all"}, content_type="application/json"
    )
    assert (r.status_code, r.json()["code"]) == (422, "invalid_phone")
    r = api.post(
        "/api/v1/contacts/0912345678/opt-out",
        {"channel_kind": "pigeon"},
        content_type="application/json",
    )
    assert (r.status_code, r.json()["code"]) == (422, "invalid_request")


def test_consents_given_through_the_api_are_in_the_history_and_withdrawn_by_the_api_opt_out(api):
    from campaigns.privacy.models import ConsentRecord, ConsentState

    r = api.post(
        "/api/v1/contacts",
        {
            "phone": "0912 345 678",
            "consents": [
                {"channel_kind": "zalo_zns", "note": "checkbox at checkout"},
                {"channel_kind": "sms", "purpose": "customer_care"},
            ],
        },
        content_type="application/json",
    )
    assert r.status_code == 201, r.content
    assert r.json()["consents_recorded"] == 2
    contact = Contact.objects.get(phone="84912345678")
    rows = ConsentRecord.objects.filter(contact=contact).order_by("id")
    assert [(c.channel_kind, c.purpose, c.granted, c.source) for c in rows] == [
        ("zalo_zns", "advertising", True, "api"),
        ("sms", "customer_care", True, "api"),
    ]
    assert rows[0].actor_label == "api:test key" and rows[0].note == "checkbox at checkout"
    assert ConsentState.objects.get(
        contact=contact, channel_kind="zalo_zns", purpose="advertising"
    ).granted

    # The opt-out endpoint is an opt-out path: it records the withdrawal.
    r = api.post(
        "/api/v1/contacts/0912345678/opt-out",
        {"channel_kind": "zalo_zns"},
        content_type="application/json",
    )
    assert r.status_code in (200, 201), r.content
    state = ConsentState.objects.get(
        contact=contact, channel_kind="zalo_zns", purpose="advertising"
    )
    assert not state.granted

    # An unknown channel kind is refused with the schema error, and nothing is recorded.
    r = api.post(
        "/api/v1/contacts",
        {"phone": "0912345678", "consents": [{"channel_kind": "pigeon"}]},
        content_type="application/json",
    )
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    assert ConsentRecord.objects.filter(contact=contact, granted=True).count() == 2
