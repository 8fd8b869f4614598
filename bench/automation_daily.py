"""The daily evaluation of a date-triggered automation over --contacts contacts (issue 20:
1,000,000 on PostgreSQL in under 10 s).

1. builds (or reuses, when they are there) --contacts contacts in their own phone range
   (8487xxxxxxx, source "bench-automations") with a birthday attribute ("YYYY-MM-DD", spread
   over 1950-2018, 29 February included) in one list, in set-based SQL, then ANALYZE;
2. makes a birthday automation on that list (a sandbox channel: nothing is sent; the drivers the
   run enqueues are removed afterwards) and, for --days different days, times one evaluation the
   way the minutely tick runs it (services.automation_run_due): the run row, the campaign, the
   deliveries chosen by SQL on attributes->>'birthday' (INSERT ... SELECT), the run's contact
   list, then the campaign started (campaign_send_now builds its messages);
3. times the same day again (nothing to do: the run exists) and prints the candidate query's plan.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/loa_bench .venv/bin/python bench/automation_daily.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import figure, machine_speed, setup_django  # noqa: E402

SOURCE = "bench-automations"
TARGET_S = 10.0


def build_contacts(n: int) -> int:
    """n contacts with birthdays and one list holding them; returns the list's id."""
    from django.db import connection

    from campaigns.models import ContactList

    name = f"{SOURCE}-{n}"
    existing = ContactList.objects.filter(name=name).first()
    if existing and existing.contact_count == n:
        return existing.pk
    with connection.cursor() as cur:
        # An earlier size's rows (their campaigns went with clean_runs): set-based, not the ORM's
        # collector over a million rows.
        cur.execute(
            "DELETE FROM campaigns_contactlistmembership WHERE contact_id IN "
            "(SELECT id FROM campaigns_contact WHERE source = %s)",
            [SOURCE],
        )
        cur.execute("DELETE FROM campaigns_contact WHERE source = %s", [SOURCE])
    ContactList.objects.filter(name__startswith=SOURCE).delete()
    cl = ContactList.objects.create(name=name)
    with connection.cursor() as cur:
        # Birthdays: day k of 1950-01-01 + 0..25000 days (to 2018), scrambled over the rows.
        cur.execute(
            "INSERT INTO campaigns_contact (phone, name, attributes, search_text, tags, source, "
            "created_at, updated_at) SELECT '847' || lpad(g::text, 8, '0'), 'Nguyen Van ' || g, "
            "jsonb_build_object('birthday', to_char(date '1950-01-01' + ((g::bigint * 7919) %% 25000)::int, "
            "'YYYY-MM-DD'), 'city', 'Ha Noi'), 'nguyen van ' || g, '[]'::jsonb, %s, now(), now() "
            "FROM generate_series(1, %s) AS g",
            [SOURCE, n],
        )
        cur.execute(
            "INSERT INTO campaigns_contactlistmembership (contact_list_id, contact_id, added_at) "
            "SELECT %s, id, now() FROM campaigns_contact WHERE source = %s",
            [cl.pk, SOURCE],
        )
        cur.execute("ANALYZE campaigns_contact")
        cur.execute("ANALYZE campaigns_contactlistmembership")
    ContactList.objects.filter(pk=cl.pk).update(contact_count=n)
    return cl.pk


def clean_runs() -> None:
    """The campaigns, lists and deliveries of earlier runs of this benchmark."""
    from campaigns.automations.models import Automation, AutomationRun
    from campaigns.models import Campaign, ContactList

    runs = AutomationRun.objects.filter(automation__name="bench birthday")
    Campaign.objects.filter(pk__in=list(runs.values_list("campaign_id", flat=True))).delete()
    ContactList.objects.filter(name__startswith="bench birthday · ").delete()
    Automation.objects.filter(name="bench birthday").delete()


def make_automation(list_id: int):
    from campaigns.automations.models import Automation
    from providers.models import Channel, ProviderAccount
    from templates_app.models import Template, TemplateParam

    account = ProviderAccount.objects.create(name=f"bench-auto-{time.time_ns()}", kind="sandbox")
    channel = Channel.objects.create(
        name=f"bench-auto-{account.pk}", account=account, kind="zalo_zns"
    )
    template = Template.objects.create(
        account=account, provider_template_id="1", name="Bench birthday", status="approved"
    )
    TemplateParam.objects.create(template=template, name="customer_name", position=0, max_length=40)
    automation = Automation.objects.create(
        name="bench birthday",
        kind="date_trigger",
        channel=channel,
        template=template,
        param_mapping={"customer_name": {"source": "field", "value": "name"}},
        send_time=dtime(8, 0),
        attribute_key="birthday",
    )
    automation.lists.set([list_id])
    return automation


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    args = parser.parse_args()
    setup_django({"DATABASE_URL": args.database_url} if args.database_url else {})
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from django_q.models import OrmQ

    from campaigns.automations.models import Automation, AutomationDelivery, AutomationRun
    from campaigns.automations.schedule import LOCAL, date_match
    from campaigns.automations.selectors import date_trigger_candidates
    from campaigns.automations.services import automation_run_due
    from campaigns.models import Message

    machine_speed()
    print(f"load average: {os.getloadavg()}", flush=True)
    started = time.perf_counter()
    clean_runs()
    list_id = build_contacts(args.contacts)
    print(f"contacts ready in {time.perf_counter() - started:.1f} s", flush=True)
    automation = make_automation(list_id)

    timings, chosen = [], []
    first = date(2027, 3, 1)  # 1 March 2027: the day 29 February birthdays are not on (feb28)
    for i in range(args.days):
        day = first + timedelta(days=i * 37)
        at = datetime.combine(day, dtime(8, 0), tzinfo=LOCAL)
        Automation.objects.filter(pk=automation.pk).update(
            status="active", next_occurrence=day, next_run_at=at
        )
        t = time.perf_counter()
        run = automation_run_due(automation_id=automation.pk, now=at + timedelta(seconds=30))
        elapsed = time.perf_counter() - t
        messages = Message.objects.filter(campaign_id=run.campaign_id).count()
        assert run.status == "created" and run.recipient_count == messages, (run.status, messages)
        timings.append(elapsed)
        chosen.append(run.recipient_count)
        print(f"{day}: {run.recipient_count} recipients, {elapsed:.2f} s", flush=True)
    median = statistics.median(timings)
    figure(
        "automation_daily_eval_s",
        round(median, 2),
        "s",
        f"<{TARGET_S}",
        median < TARGET_S,
        contacts=args.contacts,
        recipients_median=int(statistics.median(chosen)),
        db=connection.vendor,
    )
    # The same day again: the run exists, nothing is chosen twice.
    day = first
    at = datetime.combine(day, dtime(8, 0), tzinfo=LOCAL)
    Automation.objects.filter(pk=automation.pk).update(next_occurrence=day, next_run_at=at)
    before = AutomationDelivery.objects.count()
    t = time.perf_counter()
    automation_run_due(automation_id=automation.pk, now=at + timedelta(seconds=40))
    figure("automation_rerun_same_day_s", round(time.perf_counter() - t, 3), "s")
    assert AutomationDelivery.objects.count() == before
    assert AutomationRun.objects.filter(automation=automation, occurrence=day).count() == 1

    automation.refresh_from_db()
    sql, params = (
        date_trigger_candidates(automation, date_match(automation, first + timedelta(days=400)))
        .values("pk")
        .query.sql_with_params()
    )
    with connection.cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, BUFFERS OFF) " + sql, params)
        print("\n".join(r[0] for r in cur.fetchall()))
    OrmQ.objects.all().delete()  # the drivers the runs enqueued: no cluster here, nothing sends


if __name__ == "__main__":
    main()
