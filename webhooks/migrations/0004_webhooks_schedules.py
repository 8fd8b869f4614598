"""webhooks schedules its own tasks (each room owns the schedules of its tasks).

- The every-minute webhooks tick, created if missing. Databases migrated before this migration
  already have the row (campaigns 0002 used to create it): it is left as the operator has it.
- The daily retention purge moved from campaigns to webhooks (the command `purge_old_data`, now
  in webhooks/management/commands/): a schedule installed earlier is pointed at the new path.
  `purge_old_data --install-schedule` (the release step) creates it where missing.
"""

from django.db import migrations

TICK_NAME = "loa: webhooks tick"
PURGE_NAME = "loa: purge old data"
PURGE_OLD = "campaigns.management.commands.purge_old_data.scheduled_purge"
PURGE_NEW = "webhooks.management.commands.purge_old_data.scheduled_purge"


def schedules_forward(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.get_or_create(
        name=TICK_NAME,
        defaults={
            "func": "webhooks.tasks.webhooks_tick",
            "schedule_type": "I",
            "minutes": 1,
            "repeats": -1,
        },
    )
    Schedule.objects.filter(name=PURGE_NAME, func=PURGE_OLD).update(func=PURGE_NEW)


def schedules_backward(apps, schema_editor):
    # The tick stays (campaigns 0002 created it before this migration existed).
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.filter(name=PURGE_NAME, func=PURGE_NEW).update(func=PURGE_OLD)


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0003_webhookevent_lean_indexes"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]
    operations = [migrations.RunPython(schedules_forward, schedules_backward)]
