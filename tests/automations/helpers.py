"""What the automations tests share: a sendable channel and template, an automation made the way
the admin makes it (saved, then scheduled by the service), and the local clock."""

from __future__ import annotations

from datetime import date, datetime, time

from campaigns.automations.models import Automation
from campaigns.automations.schedule import LOCAL
from campaigns.automations.services import automation_reschedule
from tests.factories import ChannelFactory, ContactFactory, TemplateFactory

MAPPING = {"customer_name": {"source": "field", "value": "name"}}


def local(day: date, hour: int = 8, minute: int = 0, second: int = 30) -> datetime:
    return datetime.combine(day, time(hour, minute, second), tzinfo=LOCAL)


def sendable():
    channel = ChannelFactory()
    template = TemplateFactory(account=channel.account, params=["customer_name"])
    return channel, template


def contact(phone: str, *, birthday: str | None = None, **attributes):
    if birthday:
        attributes["birthday"] = birthday
    return ContactFactory(phone=phone, name=f"Khách {phone[-3:]}", attributes=attributes)


def make_automation(*, now: datetime, lists=(), segments=(), **fields) -> Automation:
    channel, template = sendable()
    defaults = {
        "name": "Sinh nhật",
        "kind": Automation.Kind.DATE_TRIGGER,
        "channel": channel,
        "template": template,
        "param_mapping": MAPPING,
        "send_time": time(8, 0),
        "attribute_key": "birthday",
    }
    automation = Automation.objects.create(**{**defaults, **fields})
    automation.lists.set(lists)
    automation.segments.set(segments)
    return automation_reschedule(automation_id=automation.pk, now=now)
