"""Issue 2's real path: upload a CSV in the admin -> campaign -> send through eSMS (HTTP mocked at
the requests seam, payload checked field by field against seed 003) -> eSMS GET callback on our
webhook URL -> statuses and counters."""

import json
import urllib.parse

import pytest
import responses
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from campaigns.engine.lifecycle import campaign_send_now
from campaigns.models import Campaign, ContactImport, ContactList, Message
from tests.factories import CampaignFactory, ChannelFactory, ProviderAccountFactory, TemplateFactory
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)

ESMS_V4 = "https://rest.esms.vn/MainService.svc/json/SendZaloMessage_V4_post_json/"


def _upload(text: str, list_name: str) -> ContactImport:
    """The import service as the admin's upload calls it (the admin flow is tested in tests/contacts)."""
    from campaigns.contacts.importing.run import contact_import_run

    imp = ContactImport.objects.create(
        file=SimpleUploadedFile("khach.csv", text.encode("utf-8"), content_type="text/csv"),
        original_name="khach.csv",
        contact_list=ContactList.objects.create(name=list_name),
    )
    contact_import_run(import_id=imp.pk)
    return imp


@responses.activate
def test_upload_send_via_esms_and_callbacks(admin_client):
    """Long because it is issue 2's one real path read top to bottom: upload -> campaign -> eSMS
    payload checked field by field -> callbacks -> counters, each step on the rows the step
    before made."""
    imp = _upload(
        "SĐT,Họ tên,order\n0901888484,Nguyễn Văn A,DH001\n+84 912 345 678,Trần Thị B,DH002\n"
        "0901888484,dup,DH003\nabc,bad,DH004\n",
        "Khách VIP",
    )
    imp.refresh_from_db()
    # Another engine may run the import in the background; wait for it in sync mode it is done.
    assert imp.status == ContactImport.Status.COMPLETED, imp.error_message
    assert imp.total_rows == 4
    assert imp.imported_count + imp.updated_count + imp.duplicate_count + imp.invalid_count == 4
    assert imp.invalid_count == 1 and imp.duplicate_count == 1

    account = ProviderAccountFactory(
        kind="esms", secrets={"api_key": "APIKEY123", "secret_key": "SECRET456"}
    )
    channel = ChannelFactory(account=account, official_account__oa_id="4097311281936189049")
    template = TemplateFactory(
        account=account, provider_template_id="205644", params=["customer_name", "order_code"]
    )
    campaign = CampaignFactory(
        channel=channel, template=template, lists=[ContactList.objects.get(name="Khách VIP")]
    )

    calls = []

    def reply(request):
        body = json.loads(request.body)
        calls.append(body)
        return (
            200,
            {},
            json.dumps({"CodeResult": "100", "CountRegenerate": 0, "SMSID": f"sms-{len(calls)}"}),
        )

    responses.add_callback(responses.POST, ESMS_V4, callback=reply, content_type="application/json")
    campaign_send_now(campaign_id=campaign.pk)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    assert len(calls) == 2
    by_phone = {c["Phone"]: c for c in calls}
    body = by_phone["0901888484"]
    msg = Message.objects.get(campaign=campaign, phone="84901888484")
    # Field by field against seed 003 (SendZaloMessage_V4_post_json)
    assert body["ApiKey"] == "APIKEY123"
    assert body["SecretKey"] == "SECRET456"
    assert body["Params"] == ["Nguyễn Văn A", "DH001"]  # the template's declared order
    assert body["TempID"] == "205644"
    assert body["OAID"] == "4097311281936189049"
    assert body["RequestId"] == msg.idempotency_key and len(body["RequestId"]) <= 50
    assert body["Sandbox"] == "0"
    assert body["CallbackUrl"].endswith(f"/webhooks/{account.webhook_token}/")
    assert msg.status == Message.Status.SENT and msg.provider_message_id.startswith("sms-")

    # eSMS calls back with GET + query parameters (providers.md §2.5)
    url = reverse("webhooks:receive", args=[account.webhook_token])
    ok = {
        "SMSID": msg.provider_message_id,
        "SendFailed": "0",
        "SendStatus": "5",
        "SendSuccess": "1",
        "TotalPrice": "300.0000",
        "TotalReceiver": "1",
        "TotalSent": "1",
        "RequestId": msg.idempotency_key,
        "TypeId": "25",
        "telcoid": "2",
        "phonenumber": "0901888484",
        "partnerids": "416f",
        "error_info": '{"error":0,"message":"Success","data":{"delivery_time":null,"status":1}}',
    }
    assert admin_client.get(url, ok).status_code == 200
    assert admin_client.get(url, ok).status_code == 200  # duplicate: same answer, no change
    other = Message.objects.get(campaign=campaign, phone="84912345678")
    failed = {
        "SMSID": other.provider_message_id,
        "SendFailed": "1",
        "SendStatus": "5",
        "SendSuccess": "0",
        "TotalPrice": "0.0000",
        "RequestId": "",
        "TypeId": "25",
        "error_info": '"{\\"error\\":-114,\\"message\\":\\"User is inactive, or reject the message\\"}"',
    }
    assert admin_client.get(url, failed).status_code == 200

    campaign.refresh_from_db()
    msg.refresh_from_db()
    other.refresh_from_db()
    assert msg.status == Message.Status.DELIVERED
    assert other.status == Message.Status.FAILED and other.error_code == "-114"
    assert campaign.delivered_count == 1 and campaign.failed_count == 1
    assert str(campaign.cost) == "300.00"
    assert WebhookEvent.objects.filter(outcome="duplicate").count() == 1


def test_callback_for_unknown_message_is_stored_and_applied_later(client):
    account = ProviderAccountFactory(kind="esms")
    url = reverse("webhooks:receive", args=[account.webhook_token])
    q = {
        "SMSID": "not-yet",
        "SendStatus": "5",
        "SendSuccess": "1",
        "SendFailed": "0",
        "RequestId": "loa-later",
    }
    resp = client.get(url, q)
    assert resp.status_code == 200
    event = WebhookEvent.objects.get()
    assert event.outcome == "unmatched" and "not-yet" in event.query

    channel = ChannelFactory(account=account)
    campaign = CampaignFactory(channel=channel, template__account=account)
    from tests.factories import ContactFactory

    contact = ContactFactory()
    Message.objects.create(
        campaign=campaign,
        contact=contact,
        phone=contact.phone,
        idempotency_key="loa-later",
        provider_message_id="not-yet",
        status="sent",
    )
    from webhooks.applier import webhook_events_reapply

    assert webhook_events_reapply() == 1
    assert Message.objects.get(idempotency_key="loa-later").status == "delivered"


@pytest.mark.parametrize(
    "method,query,body",
    [
        ("get", {}, b""),
        ("get", {"SendStatus": "5"}, b""),
        ("post", {}, b"\xff\xfe not json"),
    ],
)
def test_malformed_callback_gets_400_never_500(client, method, query, body):
    account = ProviderAccountFactory(kind="esms")
    url = reverse("webhooks:receive", args=[account.webhook_token])
    if method == "get":
        resp = client.get(url, query)
    else:
        resp = client.post(url, data=body, content_type="application/json")
    assert resp.status_code == 400
    assert WebhookEvent.objects.get().outcome == "rejected"


def test_bad_token_is_404(client):
    ProviderAccountFactory(kind="esms")
    assert client.get("/webhooks/nope/", {"SMSID": "1"}).status_code == 404
    assert client.get("/webhooks/" + urllib.parse.quote("../../admin") + "/").status_code == 404
    assert WebhookEvent.objects.count() == 0


def test_provider_secrets_never_shown_in_admin(admin_client):
    account = ProviderAccountFactory(
        kind="esms", secrets={"api_key": "SUPERSECRETKEY", "secret_key": "S3CR3TVALUE"}
    )
    for url in [
        reverse("admin:providers_provideraccount_change", args=[account.pk]),
        reverse("admin:providers_provideraccount_changelist"),
    ]:
        html = admin_client.get(url).content.decode()
        assert "SUPERSECRETKEY" not in html and "S3CR3TVALUE" not in html
    # saving the form with blank secret fields keeps them
    resp = admin_client.post(
        reverse("admin:providers_provideraccount_change", args=[account.pk]),
        {
            "name": account.name,
            "kind": "esms",
            "base_url": "",
            "settings": "{}",
            "rate_limit": "",
            "is_active": "on",
            "official_accounts-TOTAL_FORMS": "0",
            "official_accounts-INITIAL_FORMS": "0",
        },
    )
    assert resp.status_code == 302, resp.content[:2000]
    account.refresh_from_db()
    assert account.get_secrets() == {"api_key": "SUPERSECRETKEY", "secret_key": "S3CR3TVALUE"}
