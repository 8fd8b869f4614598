"""Load the demo: users, a sandbox account, an OA, a channel, two templates, 200 contacts, one
finished and one draft campaign. Safe to run again: it creates only what is missing.

It lives in webhooks, the top room, because it runs the finished campaign to completion: the
engine sends, then the sandbox's callbacks come back through the webhook path."""

import os
import random
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from campaigns.contacts.search import contact_search_text
from campaigns.engine.driver import campaign_drive
from campaigns.engine.lifecycle import campaign_transition
from campaigns.engine.materialize import campaign_materialize
from campaigns.models import Campaign, Contact, ContactList, ContactListMembership
from providers.models import Channel, OfficialAccount, ProviderAccount
from providers.sandbox.outbox import SandboxCallback
from templates_app.models import Template, TemplateParam
from webhooks.applier import webhook_events_apply
from webhooks.management.demo_people import GIVEN, MIDDLE, PREFIXES, SURNAMES
from webhooks.services import sandbox_callbacks_deliver

PASSWORD_FILE = Path(settings.BASE_DIR) / ".loa-admin-password"


class Command(BaseCommand):
    help = "Load Loa's demo data (idempotent) and print the admin login."

    def add_arguments(self, parser):
        parser.add_argument("--contacts", type=int, default=200)
        parser.add_argument("--quiet", action="store_true")

    def handle(self, *args, **opts):
        password = self._users()
        with transaction.atomic():
            account, channel, templates = self._providers()
            contact_list = self._contacts(opts["contacts"])
        self._campaigns(channel, templates, contact_list)
        if not opts["quiet"]:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Demo ready. Login: admin / {password}  "
                    f"(also: marketer, contacts with the same password)"
                )
            )

    def _users(self) -> str:
        password = os.environ.get("LOA_ADMIN_PASSWORD") or (
            PASSWORD_FILE.read_text().strip()
            if PASSWORD_FILE.exists()
            else secrets.token_urlsafe(9)
        )
        PASSWORD_FILE.write_text(password)
        admin, created = User.objects.get_or_create(
            username="admin",
            defaults={"is_staff": True, "is_superuser": True, "email": "admin@example.com"},
        )
        if created or not admin.check_password(password):
            admin.set_password(password)
            admin.save()
        for username, group in [("marketer", "Marketer"), ("contacts", "Contact staff")]:
            user, created = User.objects.get_or_create(
                username=username, defaults={"is_staff": True}
            )
            if created or not user.check_password(password):
                user.set_password(password)
                user.save()
            user.groups.add(Group.objects.get(name=group))
        return password

    def _providers(self):
        account, _ = ProviderAccount.objects.get_or_create(
            name="Sandbox", defaults={"kind": "sandbox"}
        )
        oa, _ = OfficialAccount.objects.get_or_create(
            account=account,
            oa_id="4097311281936189049",
            defaults={
                "name": "Loa Demo OA",
                "quality": "HIGH",
                "daily_quota": 5000,
                "remaining_quota": 5000,
                "quota_updated_at": timezone.now(),
            },
        )
        channel, _ = Channel.objects.get_or_create(
            name="Zalo ZNS (sandbox)",
            defaults={"account": account, "kind": "zalo_zns", "official_account": oa},
        )
        specs = [
            (
                "205644",
                "Xác nhận đơn hàng",
                Template.Tag.TRANSACTION,
                300,
                "Xin chào {{customer_name}}, đơn hàng {{order_code}} trị giá {{amount}}đ đã được xác nhận. "
                "Dự kiến giao ngày {{delivery_date}}.",
                [
                    ("customer_name", "customer_name", 30),
                    ("order_code", "code", 30),
                    ("amount", "amount", 20),
                    ("delivery_date", "time", 20),
                ],
            ),
            (
                "205650",
                "Ưu đãi thành viên",
                Template.Tag.PROMOTION,
                450,
                "{{customer_name}} ơi, tặng bạn mã {{voucher}} giảm 20% đến hết {{expiry}}.",
                [
                    ("customer_name", "customer_name", 30),
                    ("voucher", "code", 30),
                    ("expiry", "time", 20),
                ],
            ),
        ]
        templates = []
        for tid, name, tag, price, body, params in specs:
            t, created = Template.objects.get_or_create(
                account=account,
                provider_template_id=tid,
                defaults={
                    "official_account": oa,
                    "name": name,
                    "tag": tag,
                    "price": price,
                    "body": body,
                    "status": Template.Status.APPROVED,
                    "synced_at": timezone.now(),
                },
            )
            if created:
                TemplateParam.objects.bulk_create(
                    [
                        TemplateParam(template=t, name=n, param_type=ty, max_length=ml, position=i)
                        for i, (n, ty, ml) in enumerate(params)
                    ]
                )
            templates.append(t)
        return account, channel, templates

    def _contacts(self, n: int) -> ContactList:
        cl, _ = ContactList.objects.get_or_create(
            name="Khách hàng demo", defaults={"description": "200 demo contacts"}
        )
        if cl.contact_count:
            return cl
        rnd = random.Random(42)
        contacts = []
        phones = set()
        while len(contacts) < n:
            phone = "84" + rnd.choice(PREFIXES) + f"{rnd.randrange(10**7):07d}"
            if phone in phones:
                continue
            phones.add(phone)
            name = f"{rnd.choice(SURNAMES)} {rnd.choice(MIDDLE)} {rnd.choice(GIVEN)}"
            attrs = {
                "order": f"DH{rnd.randrange(10**5):05d}",
                "amount": str(rnd.randrange(100, 5000) * 1000),
                "gender": rnd.choice(["nam", "nữ"]),
                "city": rnd.choice(["Hà Nội", "TP.HCM", "Đà Nẵng"]),
            }
            contacts.append(
                Contact(
                    phone=phone,
                    name=name,
                    attributes=attrs,
                    search_text=contact_search_text(name),
                    source="demo",
                )
            )
        Contact.objects.bulk_create(contacts, ignore_conflicts=True)
        ids = Contact.objects.filter(phone__in=phones).values_list("id", flat=True)
        ContactListMembership.objects.bulk_create(
            [ContactListMembership(contact_list=cl, contact_id=i) for i in ids],
            ignore_conflicts=True,
        )
        cl.contact_count = len(ids)
        cl.save(update_fields=["contact_count"])
        return cl

    def _campaigns(self, channel, templates, contact_list):
        order, promo = templates
        mapping = {
            "customer_name": {"source": "field", "value": "name"},
            "order_code": {"source": "attribute", "value": "order"},
            "amount": {"source": "attribute", "value": "amount", "format": "amount"},
            "delivery_date": {
                "source": "constant",
                "value": timezone.localdate().strftime("%d/%m/%Y"),
            },
        }
        if not Campaign.objects.filter(name="Xác nhận đơn hàng tháng này").exists():
            c = Campaign.objects.create(
                name="Xác nhận đơn hàng tháng này",
                channel=channel,
                template=order,
                param_mapping=mapping,
            )
            c.lists.add(contact_list)
            self._run_to_completion(c)
        if not Campaign.objects.filter(name="Ưu đãi cuối tuần (nháp)").exists():
            d = Campaign.objects.create(
                name="Ưu đãi cuối tuần (nháp)",
                channel=channel,
                template=promo,
                param_mapping={
                    "customer_name": {"source": "field", "value": "name"},
                    "voucher": {"source": "constant", "value": "LOA20"},
                    "expiry": {"source": "constant", "value": "30/11/2026"},
                },
            )
            d.lists.add(contact_list)

    def _run_to_completion(self, campaign):
        """Send the finished demo campaign right now, in this process, through the real engine."""
        campaign_transition(campaign_id=campaign.pk, to=Campaign.Status.RUNNING, note="Demo")
        campaign_materialize(campaign_id=campaign.pk)
        campaign_drive(campaign_id=campaign.pk, time_budget=120)
        SandboxCallback.objects.update(due_at=timezone.now())
        sandbox_callbacks_deliver(limit=100_000)
        while webhook_events_apply(limit=1000):  # as the worker would, right now
            pass
