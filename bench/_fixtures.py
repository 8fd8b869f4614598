"""The rows the engine benchmarks (send_campaign.py, webhooks.py) send to: N contacts in one list
(set-based SQL), an eSMS channel with the order-confirmation template, a campaign over a list.

Project modules are imported inside the functions: a benchmark sets Django up first, on the
database its flags name (bench/_common.py setup_django)."""

from __future__ import annotations

import time


def make_contacts(n: int) -> int:
    """n contacts and one list holding them, in two set-based statements."""
    from django.db import connection

    from campaigns.models import ContactList

    cl = ContactList.objects.create(name=f"bench-{time.time_ns()}")
    with connection.cursor() as cur:
        cur.execute("SELECT COALESCE(MAX(id), 0) FROM campaigns_contact")
        base = cur.fetchone()[0]
        if connection.vendor == "postgresql":
            series = "generate_series(%s, %s) AS g"
            head = ""
            args = [base + 1, base + n]
        else:
            head = "WITH RECURSIVE s(g) AS (SELECT %s UNION ALL SELECT g + 1 FROM s WHERE g < %s) "
            series = "s"
            args = [base + 1, base + n]
        phone = (
            "'849' || substr('00000000' || CAST(g AS TEXT), -8, 8)"
            if connection.vendor != "postgresql"
            else "'849' || lpad(g::text, 8, '0')"
        )
        attrs = (
            "json_object('order', 'DH' || g)"
            if connection.vendor != "postgresql"
            else "jsonb_build_object('order', 'DH' || g)"
        )
        cur.execute(
            f"{head}INSERT INTO campaigns_contact (phone, name, attributes, search_text, source, created_at, "
            f"updated_at) SELECT {phone}, 'Nguyen Van ' || g, {attrs}, 'nguyen van ' || g, 'bench', "
            f"CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM {series}",
            args,
        )
        cur.execute(
            "INSERT INTO campaigns_contactlistmembership (contact_list_id, contact_id, added_at) "
            "SELECT %s, id, CURRENT_TIMESTAMP FROM campaigns_contact WHERE id > %s",
            [cl.pk, base],
        )
    ContactList.objects.filter(pk=cl.pk).update(contact_count=n)
    return cl.pk


def setup_channel(fake_base: str):
    from providers.models import Channel, OfficialAccount, ProviderAccount
    from templates_app.models import Template, TemplateParam

    account = ProviderAccount(
        name=f"bench-esms-{time.time_ns()}",
        kind="esms",
        base_url=f"{fake_base}/esms/MainService.svc/json",
    )
    account.set_secrets({"api_key": "bench-key", "secret_key": "bench-secret"})
    account.save()
    oa = OfficialAccount.objects.create(
        account=account, oa_id="4097311281936189049", name="Bench OA"
    )
    channel = Channel.objects.create(
        name=f"bench-{account.pk}", account=account, kind="zalo_zns", official_account=oa
    )
    template = Template.objects.create(
        account=account,
        official_account=oa,
        provider_template_id="205644",
        name="Bench",
        status="approved",
        price=300,
    )
    TemplateParam.objects.create(template=template, name="customer_name", position=0, max_length=30)
    TemplateParam.objects.create(template=template, name="order_code", position=1, max_length=30)
    return channel, template


MAPPING = {
    "customer_name": {"source": "field", "value": "name"},
    "order_code": {"source": "attribute", "value": "order"},
}


def new_campaign(channel, template, list_id, **kw):
    from campaigns.models import Campaign

    c = Campaign.objects.create(
        name=f"bench {time.time_ns()}",
        channel=channel,
        template=template,
        param_mapping=MAPPING,
        **kw,
    )
    c.lists.add(list_id)
    return c
