"""A worker killed with SIGKILL in the middle of an automation's daily run (issue 20): a real
process dies inside the run's transaction (after the campaign, its list and the deliveries were
written, before the commit); the database rolls it all back, and a real qcluster worker then
runs the tick task and sends each contact exactly one message."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from django_q.tasks import async_task

from campaigns.automations.models import Automation, AutomationDelivery, AutomationRun
from campaigns.automations.schedule import LOCAL
from campaigns.models import Campaign, ContactList, Message
from tests.automations.helpers import contact, make_automation
from tests.conftest import process_env, wait_for
from tests.factories import ContactListFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The worker: the tick as the schedule runs it, killed by SIGKILL at the last step inside the
# run's transaction (services._before_commit) when asked.
WORKER = """
import os, signal, sys
import django
django.setup()
from campaigns.automations import services
def die(run):
    assert run.campaign_id and services.AutomationDelivery.objects.filter(run=run).exists()
    os.kill(os.getpid(), signal.SIGKILL)
services._before_commit = die
services.automations_tick()
"""


def test_sigkill_inside_a_daily_run_leaves_nothing_and_a_real_worker_sends_once(qcluster):
    today = timezone.localtime(timezone.now(), LOCAL).date()
    born = f"1990-{today:%m-%d}" if (today.month, today.day) != (2, 29) else "1992-02-29"
    people = [contact(f"8494000000{i}", birthday=born) for i in range(5)]
    members = ContactListFactory(contacts=[*people, contact("84940000099", birthday="1990-01-01")])
    automation = make_automation(now=timezone.now() - timedelta(days=1), lists=[members])
    # Due a minute ago (today's occurrence), well inside the grace window.
    Automation.objects.filter(pk=automation.pk).update(
        next_occurrence=today, next_run_at=timezone.now() - timedelta(minutes=1)
    )
    lists_before = ContactList.objects.count()

    killed = subprocess.run(
        [sys.executable, "-c", WORKER],
        cwd=settings.BASE_DIR,
        env=process_env(),
        capture_output=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    assert Campaign.objects.count() == 0
    assert AutomationRun.objects.count() == 0
    assert AutomationDelivery.objects.count() == 0
    assert ContactList.objects.count() == lists_before
    automation.refresh_from_db()
    assert automation.next_occurrence == today  # still due

    cluster = qcluster(Q_WORKERS="1")
    async_task("campaigns.automations.tasks.automations_tick_task")
    async_task("campaigns.automations.tasks.automations_tick_task")  # a duplicate tick
    assert wait_for(
        lambda: Message.objects.filter(status__in=["sent", "delivered"]).count() == 5,
        timeout=90,
    ), cluster.output()
    assert Campaign.objects.count() == 1
    run = AutomationRun.objects.get()
    assert run.status == "created" and run.recipient_count == 5
    phones = list(Message.objects.values_list("phone", flat=True))
    assert sorted(phones) == sorted(p.phone for p in people)
    assert AutomationDelivery.objects.count() == 5
