"""The matrix that closes the class of hole "each provider x channel x way of writing works on its
own, but this combination was never sent end to end" (issue 15).

For every provider kind of the registry x every channel kind its adapter declares
(`channel_kinds`) x every way of writing the message that channel has (a provider ZNS template
for zalo_zns; a content template entered in Loa and free text typed in the campaign for the text
channels), a campaign is built through the wizard's services (campaign_draft_create /
campaign_draft_update), started with campaign_send_now, and sent by ONE real qcluster worker
(started once for the module) over real HTTP to bench/fake_provider. The test then checks the
bytes that matter as the fake received them, against the seeds' request shapes (where a seed is
silent the test says which assumption of docs/PROVIDERS.md it checks against), delivers each
message's delivery callback in the provider's documented format through /webhooks/<token>/ (the
cluster applies it), and checks that the campaign's counters equal its message rows.

The sandbox makes no HTTP call: for it the "wire" is the OutboundMessage the engine hands the
adapter (rebuilt from the frozen rows with the engine's own functions), and its callbacks are its
own (SandboxCallback, pumped by the cluster), each message ending in the fate the sandbox derives
from its key.

Run on SQLite and on PostgreSQL:
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/loa_x3 pytest tests/e2e/test_matrix.py
"""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from bench.fake_provider import FakeProviders
from bench.fake_provider import esms as fake_esms
from bench.fake_provider import mmp as fake_mmp
from bench.fake_provider.shared import OA_ID
from campaigns.drafts import campaign_draft_create, campaign_draft_update
from campaigns.engine.lifecycle import campaign_send_now

# The sandbox makes no HTTP call: what the engine hands it is rebuilt with the engine's own code.
from campaigns.engine.send import _outbound, campaign_send_plan
from campaigns.models import Campaign, Contact, ContactList, ContactListMembership, Message
from providers.models import Channel, OfficialAccount, ProviderAccount
from providers.registry import PROVIDERS
from providers.sandbox.adapter import _fate as sandbox_fate
from providers.sandbox.outbox import SandboxCallback
from templates_app.models import Template, TemplateParam
from tests.conftest import QCluster
from webhooks.models import WebhookEvent

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CLUSTER_ENV = {
    "Q_WORKERS": "2",
    "LOA_SEND_BATCH_SIZE": "20",
    "LOA_SEND_CONCURRENCY": "2",
    "LOA_DRIVER_TIME_BUDGET": "10",
    "Q_TIMEOUT": "30",
    "Q_RETRY": "60",
}
TIMEOUT = 30  # seconds for one stage of one case: far above what a case takes (~1-2 s)

# ---- the audience: two contacts whose data exercises the rendering -------------------------------
# Vietnamese diacritics in a name (UTF-8 on the wire, UCS-2 for SMS), and an order number stored
# as a JSON number: every provider wants parameters as strings.
CONTACTS = [
    ("84901234561", "Nguyễn Thị Ánh", {"order": 1001, "email": "anh@example.com"}),
    ("84901234562", "Trần Văn Đức", {"order": "DH-002", "email": "duc@example.vn"}),
]
MAPPING = {
    "customer_name": {"source": "field", "value": "name"},
    "order_code": {"source": "attribute", "value": "order"},
}
PARAMS = ["customer_name", "order_code"]  # the template's declared order
ZNS_TEMPLATE_ID = "205644"  # the fake's template (bench/fake_provider/shared.py)
MMP_ZNS_TEMPLATE_ID = "tpl-1"  # an MMP template publicId (the fake's approved template)

TEXT_TEMPLATE = "Chào {{customer_name}}, đơn {{order_code}} đã giao."
FREE_TEXT = "Loa: {{customer_name}} ơi, mã {{order_code}} sẵn sàng."
EMAIL_TEMPLATE = "<p>Chào {{customer_name}},</p><p>Đơn <b>{{order_code}}</b> đã giao.</p>"
EMAIL_SUBJECT = "Đơn {{order_code}} của {{customer_name}}"
FREE_EMAIL = "<p>{{customer_name}}: mã {{order_code}}</p>"


def _expected_text(way: str, channel: str, name: str, order: str) -> str:
    """The rendered content one recipient must receive, written out by hand."""
    if channel == "email":
        if way == "content_template":
            return f"<p>Chào {name},</p><p>Đơn <b>{order}</b> đã giao.</p>"
        return f"<p>{name}: mã {order}</p>"
    if way == "content_template":
        return f"Chào {name}, đơn {order} đã giao."
    return f"Loa: {name} ơi, mã {order} sẵn sàng."


def _expected_subject(way: str, channel: str, name: str, order: str) -> str:
    if channel != "email":
        return ""
    return f"Đơn {order} của {name}"


def _expected_rows() -> list[dict]:
    return [
        {
            "phone": phone,
            "name": name,
            "order": str(attrs["order"]),
            "email": attrs["email"],
        }
        for phone, name, attrs in CONTACTS
    ]


# ---- the matrix -------------------------------------------------------------------------------
def _ways(channel: str) -> list[str]:
    return ["zns_template"] if channel == "zalo_zns" else ["content_template", "free_text"]


def _cases() -> list:
    cases = []
    for kind, cls in PROVIDERS.items():
        for channel in cls.channel_kinds:
            for way in _ways(channel):
                cases.append(pytest.param(kind, channel, way, id=f"{kind}-{channel}-{way}"))
    return cases


# ---- fixtures: one fake provider server and one qcluster for the whole module --------------------
@pytest.fixture(scope="module")
def fake():
    with FakeProviders(latency_ms=0, callbacks=False, seed=15) as server:
        yield server


@pytest.fixture(scope="module")
def cluster(django_db_setup, django_db_blocker):
    """One real `manage.py qcluster` against the test database for every case; tasks the test
    process enqueues (drivers, the webhook applier) go to the ORM broker it reads."""
    from django_q.conf import Conf

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Conf, "SYNC", False)
        c = QCluster(**CLUSTER_ENV)
        try:
            yield c
        finally:
            _stop(c)


def _stop(c: QCluster) -> None:
    """SIGTERM, then SIGKILL after 5 s: the cases are over, nothing is left to finish."""
    import os
    import signal
    import subprocess

    if c.proc.poll() is None:
        os.killpg(c.proc.pid, signal.SIGTERM)
        try:
            c.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            c.kill()
    c.stop()


def _wait(predicate, what: str, cluster: QCluster, timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    value = predicate()
    assert value, f"timed out waiting for {what}\n--- qcluster output ---\n{cluster.output()}"
    return value


# ---- building the campaign through the wizard's services ---------------------------------------
def _account(kind: str, fake: FakeProviders) -> ProviderAccount:
    secrets, base_url = {}, ""
    if kind == "esms":
        secrets, base_url = {"api_key": "x3-api", "secret_key": "x3-secret"}, fake.url("esms")
    elif kind == "etelecom":
        secrets, base_url = {"api_key": "x3-shop-key"}, fake.url("etelecom")
    elif kind in ("vna_mmp", "metfone_mmp"):
        secrets, base_url = {"api_key": "x3-mmp-key"}, fake.url(kind)
    settings = {}
    if kind == "metfone_mmp":
        # Metfone's SMS and RCS reach Cambodia (providers/reach.py); the matrix's audience is
        # Vietnamese, so the account widens them (the documented override). Cambodia itself:
        # tests/e2e/test_cambodia_send.py.
        settings = {"reach": {"sms": ["KH", "VN"], "rcs": ["KH", "VN"]}}
    account = ProviderAccount.objects.create(
        name=f"{kind} account", kind=kind, base_url=base_url, settings=settings
    )
    if secrets:
        account.set_secrets(secrets)
        account.save()
    return account


def _channel(account: ProviderAccount, channel_kind: str) -> Channel:
    oa = None
    if channel_kind == "zalo_zns" and account.kind != "vna_mmp":
        oa = OfficialAccount.objects.create(account=account, oa_id=OA_ID, name="Loa OA")
    external = f"pub-{channel_kind}" if account.kind.endswith("_mmp") else ""
    return Channel.objects.create(
        name=f"{account.kind} {channel_kind}",
        account=account,
        kind=channel_kind,
        official_account=oa,
        external_id=external,
    )


def _template(account: ProviderAccount, channel_kind: str, way: str) -> Template | None:
    if way == "free_text":
        return None
    if way == "zns_template":
        tid = MMP_ZNS_TEMPLATE_ID if account.kind.endswith("_mmp") else ZNS_TEMPLATE_ID
        template = Template.objects.create(
            account=account,
            provider_template_id=tid,
            name="Xác nhận đơn hàng",
            channel_kind="zalo_zns",
            status=Template.Status.APPROVED,
            body="Xin chào {{customer_name}}, đơn {{order_code}}",
        )
    else:  # a content template entered in Loa (never synced from a provider)
        email = channel_kind == "email"
        template = Template.objects.create(
            account=account,
            provider_template_id=f"loa-{channel_kind}",
            name=f"Nội dung {channel_kind}",
            channel_kind=channel_kind,
            status=Template.Status.APPROVED,
            body=EMAIL_TEMPLATE if email else TEXT_TEMPLATE,
            subject=EMAIL_SUBJECT if email else "",
        )
    for i, name in enumerate(PARAMS):
        TemplateParam.objects.create(template=template, name=name, position=i, max_length=60)
    return template


def _audience() -> ContactList:
    contact_list = ContactList.objects.create(name="matrix", contact_count=len(CONTACTS))
    for phone, name, attrs in CONTACTS:
        contact = Contact.objects.create(phone=phone, name=name, attributes=attrs)
        ContactListMembership.objects.create(contact_list=contact_list, contact=contact)
    return contact_list


def _campaign(kind: str, channel_kind: str, way: str, fake: FakeProviders) -> Campaign:
    account = _account(kind, fake)
    channel = _channel(account, channel_kind)
    user = User.objects.create_user("x3-marketer", password="pw-Loa-2026!", is_staff=True)
    # The wizard's steps: channel, then the message, then the mapping, then the audience.
    campaign = campaign_draft_create(
        name=f"matrix {kind} {channel_kind} {way}", channel=channel, user=user
    )
    template = _template(account, channel_kind, way)
    content = ""
    if way == "free_text":
        content = FREE_EMAIL if channel_kind == "email" else FREE_TEXT
    fields = {"template": template, "content": content}
    if way == "free_text" and channel_kind == "email":
        fields["subject"] = EMAIL_SUBJECT  # the wizard asks a free-text email for its subject
    campaign = campaign_draft_update(campaign=campaign, **fields)
    campaign = campaign_draft_update(campaign=campaign, param_mapping=dict(MAPPING))
    return campaign_draft_update(campaign=campaign, lists=[_audience()])


# ---- what arrived at the provider --------------------------------------------------------------
def _sends(fake: FakeProviders, kind: str, channel_kind: str) -> list[dict]:
    part = {
        "esms": "SendZaloMessage_V4_post_json",
        "etelecom": "/SendZNS",
        "vna_mmp": "/email/send" if channel_kind == "email" else "/channel/broadcast",
        "metfone_mmp": "/email/send" if channel_kind == "email" else "/channel/broadcast",
    }[kind]
    with fake.lock:
        return [r for r in fake.requests if part in r["path"] and r["method"] == "POST"]


def _check_esms(req: dict, row: dict, message: Message) -> None:
    """Seed 003 (SendZaloMessage_V4_post_json): ApiKey, SecretKey, Phone, Params (the values in
    the template's order, as strings), TempID and OAID as strings, RequestId (<= 50 chars),
    CallbackUrl, Sandbox "0"."""
    body = req["body"]
    assert body["ApiKey"] == "x3-api" and body["SecretKey"] == "x3-secret"
    # assumed: docs/PROVIDERS.md "eSMS.vn" (phone_format "local": 0901888484 as eSMS's examples)
    assert body["Phone"] == "0" + row["phone"][2:]
    assert body["Params"] == [row["name"], row["order"]]
    assert body["TempID"] == ZNS_TEMPLATE_ID and body["OAID"] == OA_ID
    assert body["RequestId"] == message.idempotency_key and len(body["RequestId"]) <= 50
    assert body["Sandbox"] == "0"
    assert body["CallbackUrl"].endswith(
        reverse(
            "webhooks:receive", kwargs={"token": message.campaign.channel.account.webhook_token}
        )
    )


def _check_etelecom(req: dict, row: dict, message: Message) -> None:
    """Seed 004 (SendZNS): oa_id (int64 as a string), phone, template_id integer, template_data
    (the template's attributes), tracking_id ours, sending_mode "default"; Bearer auth
    (assumed: docs/PROVIDERS.md "eTelecom (Zalo Cloud API)", Transport)."""
    body = req["body"]
    assert req["headers"]["Authorization"] == "Bearer x3-shop-key"
    assert body["oa_id"] == OA_ID
    # assumed: docs/PROVIDERS.md "eTelecom (Zalo Cloud API)" (phone_format "international")
    assert body["phone"] == row["phone"]
    assert body["template_id"] == int(ZNS_TEMPLATE_ID)
    assert body["template_data"] == {"customer_name": row["name"], "order_code": row["order"]}
    # (an object: named, so its key order means nothing; PostgreSQL's jsonb does not keep it)
    assert body["tracking_id"] == message.idempotency_key
    assert body["sending_mode"] == "default" and "mode" not in body


def _check_mmp(req: dict, row: dict, message: Message, channel_kind: str, way: str) -> None:
    """Seeds 000/001 name the operations and schemas only (clientMessageId and publicId appear in
    their webhooks); every field below is assumed: docs/PROVIDERS.md "VNA MMP and Metfone MMP"
    (Assumed bodies; auth_header Authorization: Bearer; phone_format international)."""
    body = req["body"]
    assert req["headers"]["Authorization"] == "Bearer x3-mmp-key"
    assert body["clientMessageId"] == message.idempotency_key
    if channel_kind == "email":
        # assumed: docs/PROVIDERS.md "VNA MMP and Metfone MMP", bodies.email_send
        # (the subject is checked at the end of the test: _subjects_sent)
        assert body["to"] == [row["email"]]
        assert body["html"] == _expected_text(way, channel_kind, row["name"], row["order"])
        return
    assert body["publicId"] == f"pub-{channel_kind}"
    assert body["subscribers"] == [
        {"phone": row["phone"], "clientMessageId": message.idempotency_key}
    ]
    # Seed 000's applicationId list: 1 viber, 10 viber bot, 3 sms; other kinds have none.
    app_id = {"viber": 1, "viber_bot": 10, "sms": 3}.get(channel_kind)
    assert body.get("applicationId") == app_id
    if way == "zns_template":
        assert body["message"] == {
            "type": "template",
            "template": {
                "publicId": MMP_ZNS_TEMPLATE_ID,
                "params": {"customer_name": row["name"], "order_code": row["order"]},
            },
        }
    else:
        text = _expected_text(way, channel_kind, row["name"], row["order"])
        assert body["message"] == {"type": "text", "text": text}


def _check_sandbox(campaign: Campaign, messages: list[Message], way: str) -> None:
    """No HTTP: what the engine hands the sandbox adapter, rebuilt with the engine's own
    functions from the frozen rows (campaigns.engine.send)."""
    plan = campaign_send_plan(
        Campaign.objects.select_related("channel", "template").get(pk=campaign.pk)
    )
    for row, message in zip(_expected_rows(), messages, strict=True):
        out = _outbound(plan, message, email=row["email"])
        assert out.phone == row["phone"]
        if way == "zns_template":
            assert out.template_id == ZNS_TEMPLATE_ID and out.param_order == tuple(PARAMS)
            assert out.template_data == {"customer_name": row["name"], "order_code": row["order"]}
            continue
        ch = plan.channel_kind
        assert out.template_id == ""
        assert out.content == _expected_text(way, ch, row["name"], row["order"])
        if ch != "email":  # an email's subject is checked at the end: _subjects_sent
            assert out.subject == ""


def _subjects_sent(fake, kind: str, campaign: Campaign, messages: list[Message]) -> list[str]:
    """The subject each email recipient got, in the order of `messages`."""
    if kind == "sandbox":
        plan = campaign_send_plan(
            Campaign.objects.select_related("channel", "template").get(pk=campaign.pk)
        )
        return [_outbound(plan, m).subject for m in messages]
    by_key = {r["body"]["clientMessageId"]: r for r in _sends(fake, kind, "email")}
    return [by_key[m.idempotency_key]["body"]["subject"] for m in messages]


def _check_wire(fake, kind, channel_kind, way, campaign, messages) -> None:
    if kind == "sandbox":
        _check_sandbox(campaign, messages, way)
        return
    sends = _sends(fake, kind, channel_kind)
    assert len(sends) == len(messages), sends  # exactly one call per recipient
    key_of = {
        "esms": lambda r: r["body"]["RequestId"],
        "etelecom": lambda r: r["body"]["tracking_id"],
    }.get(kind, lambda r: r["body"]["clientMessageId"])
    by_key = {key_of(r): r for r in sends}
    for row, message in zip(_expected_rows(), messages, strict=True):
        req = by_key[message.idempotency_key]
        if kind == "esms":
            _check_esms(req, row, message)
        elif kind == "etelecom":
            _check_etelecom(req, row, message)
        else:
            _check_mmp(req, row, message, channel_kind, way)


# ---- the callbacks ---------------------------------------------------------------------------
def _deliver_callbacks(client, fake: FakeProviders, kind: str, messages: list[Message]) -> None:
    """Each message's "delivered" callback, in the provider's documented format, POSTed (GET
    for eSMS) to the account's webhook URL."""
    url = reverse(
        "webhooks:receive", kwargs={"token": messages[0].campaign.channel.account.webhook_token}
    )
    for message in messages:
        record = fake.messages[message.provider_message_id]
        if kind == "esms":
            # providers.md §2.5 / docs/PROVIDERS.md "eSMS.vn" Callbacks: GET with the fields as
            # query parameters, SendStatus 5 + SendSuccess 1 = delivered, TotalPrice the fee.
            resp = client.get(url, data=fake_esms.callback(record))
        elif kind == "etelecom":
            # assumed: docs/PROVIDERS.md "eTelecom (Zalo Cloud API)" Webhooks: the zl_oa_message
            # payload is the GetMessage object (seed 002) with delivery_status "received".
            payload = {**record, "delivery_status": "received", "is_charged": True, "fee_main": 300}
            resp = client.post(url, data=payload, content_type="application/json")
        else:
            # Seed 000/001 "Webhook Broadcast": status 4 DELIVERED, keyed by our clientMessageId.
            # For email no webhook is documented: the same payload, keyed by clientMessageId.
            payload = fake_mmp.status_payload(record, 4, "DELIVERED")
            resp = client.post(url, data=payload, content_type="application/json")
            assert resp.status_code == 200, resp.content
            if message.campaign.channel.kind != "email":
                # ... then status 5 READ (seed 000's own example is a READ).
                payload = fake_mmp.status_payload(record, 5, "READ")
                resp = client.post(url, data=payload, content_type="application/json")
        assert resp.status_code == 200, resp.content


def _expected_status(kind: str, message: Message) -> str:
    if kind == "sandbox":
        fate = sandbox_fate(message.idempotency_key)[0]
        return Message.Status.SENT if fate == "sent" else fate
    if kind.endswith("_mmp") and message.campaign.channel.kind != "email":
        return Message.Status.READ
    return Message.Status.DELIVERED


def _fees(kind: str) -> str | None:
    return {"esms": "300.00", "etelecom": "300.00"}.get(kind)


def _assert_counters_equal_rows(campaign: Campaign, kind: str) -> None:
    """The campaign's denormalized counters against its message rows, at rest."""
    campaign.refresh_from_db()
    rows = Message.objects.filter(campaign=campaign)
    by = {s: rows.filter(status=s).count() for s in Message.Status.values}
    assert campaign.total_count == rows.count() == len(CONTACTS)
    # Counters are "reached" counts (campaigns/engine/delivery.py): a read message counts as
    # sent, delivered and read; a message the provider took and later reported failed stays
    # counted as sent (its sent_at is kept) and counts as failed.
    assert (
        campaign.sent_count
        == by["sent"]
        + by["delivered"]
        + by["read"]
        + rows.filter(status="failed", sent_at__isnull=False).count()
    )
    assert campaign.sent_count == rows.filter(sent_at__isnull=False).count()
    assert campaign.delivered_count == by["delivered"] + by["read"]
    assert campaign.read_count == by["read"]
    assert campaign.failed_count == by["failed"]
    assert campaign.unknown_count == by["unknown"] == 0
    assert campaign.skipped_count == by["skipped"] == 0
    fee = _fees(kind)
    if fee is not None:
        assert {str(m.fee) for m in rows} == {fee}
        assert campaign.cost == sum(m.fee for m in rows)


# ---- the test ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "channel_kind", "way"), _cases())
def test_matrix_campaign_reaches_provider_and_callbacks_settle_counters(
    kind, channel_kind, way, fake, cluster, client
):
    fake.reset()
    campaign = _campaign(kind, channel_kind, way, fake)
    assert campaign_send_now(campaign_id=campaign.pk) == len(CONTACTS)

    def completed():
        campaign.refresh_from_db()
        return campaign.status == Campaign.Status.COMPLETED

    _wait(completed, f"{campaign.name} to complete (status {campaign.status})", cluster)
    messages = list(
        Message.objects.filter(campaign=campaign)
        .select_related("campaign__channel__account")
        .order_by("phone")
    )
    assert [m.phone for m in messages] == [r["phone"] for r in _expected_rows()]
    assert {m.status for m in messages} <= {
        Message.Status.SENT,
        Message.Status.DELIVERED,
        Message.Status.READ,
        Message.Status.FAILED,
    }
    # The frozen data: strings, in the mapping's names.
    for row, m in zip(_expected_rows(), messages, strict=True):
        assert m.template_data == {"customer_name": row["name"], "order_code": row["order"]}

    _check_wire(fake, kind, channel_kind, way, campaign, messages)

    if kind != "sandbox":
        assert all(m.provider_message_id in fake.messages for m in messages)
        _deliver_callbacks(client, fake, kind, messages)

    expected = {m.pk: _expected_status(kind, m) for m in messages}

    def applied():
        got = dict(Message.objects.filter(campaign=campaign).values_list("pk", "status"))
        idle = not SandboxCallback.objects.exists()
        return got == expected and idle

    _wait(applied, f"callbacks applied to {campaign.name} (want {expected})", cluster)
    # Every callback was stored and applied (none unmatched, ignored, rejected or failed).
    events = WebhookEvent.objects.filter(account_id=campaign.channel.account_id)
    _wait(
        lambda: not events.exclude(outcome=WebhookEvent.Outcome.APPLIED).exists(),
        f"webhook events of {campaign.name} to be applied: "
        f"{list(events.values_list('outcome', 'outcome_detail'))}",
        cluster,
    )
    if kind != "sandbox":
        per_message = 2 if expected[messages[0].pk] == Message.Status.READ else 1
        assert events.count() == per_message * len(messages)

    _assert_counters_equal_rows(campaign, kind)

    if channel_kind == "email":
        # A free-text email sends the campaign's subject, a content template the template's
        # (issue 15: a free-text email went out with an empty subject).
        assert _subjects_sent(fake, kind, campaign, messages) == [
            _expected_subject(way, channel_kind, r["name"], r["order"]) for r in _expected_rows()
        ]
