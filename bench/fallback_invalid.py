"""A fallback step's template check over many rows: the row path beside the by-value read.

    .venv/bin/python bench/fallback_invalid.py                    # on loa_scale10m
    .venv/bin/python bench/fallback_invalid.py --rows 200000 --database-url postgres://...

When a fallback step is built (campaigns.engine.fallback.campaign_fall_back), its new rows that
break the step template's rules are skipped (_skip_invalid), inside the transaction that holds
the campaign's row lock. The row path read every new row into Python; on PostgreSQL the rows
holding a failing value are now found per distinct value first
(campaigns.engine.invalid_by_value.messages_holding_failing_values) and only those are read.

This copies --rows messages of the database's first campaign as step-1 rows of that campaign
(their template data as built: names, order codes), and some with a name too long for the
template, inside a transaction rolled back afterwards; then times, same run, alternating:
- "rows": every pending step-1 row read and checked with validate_data (the previous code);
- "by value": the narrowed read plus the same check on what it returns.
Both must find the same failing rows (checked).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import figure, scale_database_argument  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    scale_database_argument(ap)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.db import connection, transaction

    from campaigns.engine.invalid_by_value import messages_holding_failing_values
    from campaigns.engine.validation import campaign_params
    from campaigns.models import Campaign, Message
    from templates_app.validation import validate_data

    campaign = Campaign.objects.filter(template__isnull=False).order_by("pk").first()
    params = campaign_params(campaign)
    pending = Message.objects.filter(campaign=campaign, step=1, status="pending", attempts=0)

    def failing(qs) -> set[int]:
        out = set()
        for pk, data in qs.values_list("pk", "template_data").iterator(chunk_size=2000):
            if validate_data(params, {k: str(v) for k, v in (data or {}).items()}):
                out.add(pk)
        return out

    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute(
                "INSERT INTO campaigns_message (campaign_id, contact_id, phone, template_data,"
                " idempotency_key, step, provider_message_id, status, error_class, error_code,"
                " error_message, attempts, created_at, updated_at)"
                " SELECT campaign_id, contact_id, phone,"
                " CASE WHEN id %% 1000 = 7 THEN jsonb_set(template_data, '{customer_name}',"
                "   to_jsonb(repeat('Nguyễn ', 9))) ELSE template_data END,"
                " idempotency_key || 's1', 1, '', 'pending', '', '', '', 0, now(), now()"
                " FROM campaigns_message WHERE campaign_id = %s AND step = 0"
                " ORDER BY id LIMIT %s",
                [campaign.pk, args.rows],
            )
            cur.execute("ANALYZE campaigns_message")
        times = {"rows": [], "by_value": []}
        found = {}
        for _ in range(args.runs):
            for label in ("rows", "by_value"):
                started = time.perf_counter()
                qs = (
                    pending if label == "rows" else messages_holding_failing_values(pending, params)
                )
                found[label] = failing(qs)
                times[label].append(time.perf_counter() - started)
        assert found["rows"] == found["by_value"], "the two paths disagree"
        transaction.set_rollback(True)
    rows, by_value = (statistics.median(times[k]) for k in ("rows", "by_value"))
    load = f"{os.getloadavg()[0]:.2f}"
    figure("fallback_check_rows_s", round(rows, 2), "s", "-", None, rows=args.rows, load=load)
    figure(
        "fallback_check_by_value_s",
        round(by_value, 2),
        "s",
        "-",
        None,
        failing=len(found["by_value"]),
        ratio=round(by_value / rows, 3),
        load=load,
    )


if __name__ == "__main__":
    main()
