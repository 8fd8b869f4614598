from datetime import date, timedelta

from django.db import migrations
from django.utils import timezone

SCHEDULE_NAME = "loa: automations"
FUNC = "campaigns.automations.tasks.automations_tick_task"
# Seeded years: this one and the next five; an administrator adds later ones with the
# holiday admin's "Add the public holidays of the next years" action.
SEED_YEARS = 6


def create_schedule(apps, schema_editor):
    """Every minute (the campaigns scheduler's pattern): the due occurrences of every active
    automation become runs, each an ordinary campaign."""
    Schedule = apps.get_model("django_q", "Schedule")
    first = (timezone.now() + timedelta(minutes=1)).replace(second=0, microsecond=0)
    Schedule.objects.update_or_create(
        name=SCHEDULE_NAME,
        defaults={"func": FUNC, "schedule_type": "I", "minutes": 1, "repeats": -1, "next_run": first},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=SCHEDULE_NAME).delete()


def seed_holidays(apps, schema_editor):
    """The public holidays from the calendar code as it is when the migration runs (the dates
    of a year never change; the calendar only computes them)."""
    from django.utils import translation

    from campaigns.automations.calendar.holidays import public_holidays

    Holiday = apps.get_model("automations", "Holiday")
    this_year = date.today().year
    for year in range(this_year, this_year + SEED_YEARS):
        for h in public_holidays(year):
            with translation.override("en"):
                label = str(h.label)[:200]  # the message id: Holiday.name() translates it
            Holiday.objects.get_or_create(date=h.date, defaults={"key": h.key, "label": label})


class Migration(migrations.Migration):
    dependencies = [
        ("automations", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [
        migrations.RunPython(create_schedule, remove_schedule),
        migrations.RunPython(seed_holidays, migrations.RunPython.noop),
    ]
