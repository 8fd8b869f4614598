"""The advertising-consent rule's cost at a million contacts (issue 21).

1. builds (or reuses) --contacts contacts in their own phone range (8487xxxxxxx, source
   "bench-consent"), all in one list, in set-based SQL; a current advertising consent for SMS on
   60% of them, for all channels on 10%, an SMS withdrawal on 5% of the "all" ones, 2% opted out
   of SMS; then ANALYZE;
2. times, median of --runs runs, the pre-flight's counts of a campaign on that list that requires
   advertising consent (campaigns.selectors.campaign.campaign_preflight: in the lists, opted out,
   no consent, recipients: 3 counts) and, for comparison, of the same campaign without the rule
   (2 counts); prints the plan of the consent count;
3. times the bulk consent of an import (consent_grant_bulk over --import-rows contacts of the
   list, 2 channel kinds), the path an import with "these contacts consented" takes.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/loa_bench .venv/bin/python bench/consent_preflight.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import figure, machine_speed, setup_django  # noqa: E402

SOURCE = "bench-consent"
LIST = "bench consent"


def build(n: int) -> int:
    from django.db import connection

    from campaigns.models import Contact, ContactList

    cl, _ = ContactList.objects.get_or_create(name=LIST)
    have = Contact.objects.filter(source=SOURCE).count()
    if have >= n:
        print(f"reusing {have:,} contacts")
        return cl.pk
    print(f"creating {n - have:,} contacts with consents…")
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO campaigns_contact (phone, name, attributes, tags, search_text, source,"
            " created_at, updated_at)"
            " SELECT '8487' || lpad(g::text, 7, '0'), 'Khách ' || g, '{}'::jsonb, '[]'::jsonb,"
            " 'khach ' || g, %s, now(), now() FROM generate_series(%s, %s) g"
            " ON CONFLICT (phone) DO NOTHING",
            [SOURCE, have + 1, n],
        )
        cur.execute(
            "INSERT INTO campaigns_contactlistmembership (contact_list_id, contact_id, added_at)"
            " SELECT %s, id, now() FROM campaigns_contact WHERE source = %s"
            " ON CONFLICT DO NOTHING",
            [cl.pk, SOURCE],
        )
        cur.execute(
            "UPDATE campaigns_contactlist SET contact_count = (SELECT count(*) FROM"
            " campaigns_contactlistmembership WHERE contact_list_id = %s) WHERE id = %s",
            [cl.pk, cl.pk],
        )
        # States as the services write them (the history is not read by the pre-flight).
        for kind, modulo, keep, granted in (
            ("sms", 10, "< 6", True),
            ("all", 10, "= 7", True),
            ("sms", 200, "= 7", False),
        ):
            cur.execute(
                "INSERT INTO privacy_consentstate (contact_id, channel_kind, purpose, granted,"
                " at, source) SELECT id, %s, 'advertising', %s, now(), 'import'"
                f" FROM campaigns_contact WHERE source = %s AND mod(id, {modulo}) {keep}"
                " ON CONFLICT (contact_id, channel_kind, purpose) DO UPDATE SET"
                " granted = excluded.granted",
                [kind, granted, SOURCE],
            )
        cur.execute(
            "INSERT INTO campaigns_optout (contact_id, channel_kind, reason, source, created_at)"
            " SELECT id, 'sms', '', 'admin', now() FROM campaigns_contact"
            " WHERE source = %s AND mod(id, 50) = 1 ON CONFLICT DO NOTHING",
            [SOURCE],
        )
        for table in (
            "campaigns_contact",
            "campaigns_contactlistmembership",
            "privacy_consentstate",
            "campaigns_optout",
        ):
            cur.execute(f"ANALYZE {table}")
    print(f"  created in {time.perf_counter() - t0:.1f} s")
    return cl.pk


def campaign_on(list_id: int, *, requires: bool):
    from campaigns.models import Campaign, ContactList
    from tests.factories import ChannelFactory

    name = f"bench consent {'on' if requires else 'off'}"
    campaign = Campaign.objects.filter(name=name).first()
    if campaign is None:
        channel = ChannelFactory(kind="sms", official_account=None)
        campaign = Campaign.objects.create(name=name, channel=channel, template=None, content="x")
        campaign.lists.add(ContactList.objects.get(pk=list_id))
    campaign.requires_advertising_consent = requires
    campaign.save(update_fields=["requires_advertising_consent"])
    return campaign


def median_ms(fn, runs: int):
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--import-rows", type=int, default=200_000)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    args = parser.parse_args()
    env = dict(os.environ)
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    setup_django(env)
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    machine_speed()
    list_id = build(args.contacts)

    from campaigns.engine.audience import campaign_audience
    from campaigns.models import Contact
    from campaigns.privacy.services import consent_grant_bulk
    from campaigns.selectors.campaign import campaign_preflight

    on = campaign_on(list_id, requires=True)
    off = campaign_on(list_id, requires=False)

    def counts(c):
        pre = campaign_preflight(campaign=c)
        return pre["in_lists"], pre["opted_out"], pre.get("no_consent"), pre["recipients"]

    ms_on, got_on = median_ms(lambda: counts(on), args.runs)
    ms_off, got_off = median_ms(lambda: counts(off), args.runs)
    print(f"with the rule:    {got_on} (in lists, opted out, no consent, recipients)")
    print(f"without the rule: {got_off}")
    figure("consent_preflight_ms", round(ms_on), "ms", "-", None, contacts=args.contacts)
    figure("preflight_without_rule_ms", round(ms_off), "ms", "-", None, contacts=args.contacts)
    if connection.vendor == "postgresql":
        sql, params = campaign_audience(on).order_by().values("pk").query.sql_with_params()
        with connection.cursor() as cur:
            cur.execute(
                f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) SELECT count(*) FROM ({sql}) s", params
            )
            print("plan of the recipients count with the rule:")
            for (line,) in cur.fetchall():
                print("  " + line)

    # The import path: one consent per contact of a file, two channel kinds.
    ids = Contact.objects.filter(source=SOURCE).order_by("pk")[: args.import_rows]
    t0 = time.perf_counter()
    written = consent_grant_bulk(
        contacts=Contact.objects.filter(pk__in=ids.values("pk")),
        channel_kinds=["zalo_zns", "viber"],
        source="import",
        note="bench",
    )
    seconds = time.perf_counter() - t0
    print(f"bulk consent: {written:,} records in {seconds:.1f} s")
    figure(
        "consent_bulk_records_per_s", round(written / seconds), "rows/s", "-", None, rows=written
    )
    # Leave the states as they were for the next run (the history keeps the bench's rows).
    with connection.cursor() as cur:
        cur.execute(
            "DELETE FROM privacy_consentstate WHERE channel_kind IN ('zalo_zns', 'viber')"
            " AND contact_id IN (SELECT id FROM campaigns_contact WHERE source = %s)",
            [SOURCE],
        )
        cur.execute("DELETE FROM privacy_consentrecord WHERE note = 'bench'")


if __name__ == "__main__":
    main()
