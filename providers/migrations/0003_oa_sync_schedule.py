from datetime import timedelta

from django.db import migrations
from django.utils import timezone

SCHEDULE_NAME = "loa: OA quota sync"
FUNC = "providers.tasks.oa_sync_all_task"


def create_schedule(apps, schema_editor):
    """Every hour, a minute past the hour: each account's Official Accounts read again (quality,
    daily and remaining quota), and the quota given back after Zalo's midnight reset. Before,
    the OA sync ran only by hand and the quota read this morning's figure all day."""
    Schedule = apps.get_model("django_q", "Schedule")
    first = (timezone.now() + timedelta(hours=1)).replace(minute=1, second=0, microsecond=0)
    Schedule.objects.update_or_create(
        name=SCHEDULE_NAME,
        defaults={"func": FUNC, "schedule_type": "H", "repeats": -1, "next_run": first},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=SCHEDULE_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("providers", "0002_channel_settings"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
