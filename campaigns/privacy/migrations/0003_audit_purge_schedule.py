"""The daily purge of the audit trail (LOA_AUDIT_RETENTION_DAYS), scheduled in django-q2, and
who may read the trail: the Administrator role may view audit events and consent records (no
role may add, change or delete them: the admin refuses it to everyone, campaigns.privacy.admin).

Each room owns the schedules of its tasks (webhooks 0004). Created if missing; an operator's
changes to an existing row (another time of day) are left as they are.
"""

from datetime import timedelta

from django.db import migrations
from django.utils import timezone

NAME = "loa: audit trail purge"
FUNC = "campaigns.privacy.tasks.privacy_audit_purge"


def forward(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    # 20:30 UTC, 03:30 in Vietnam: a quiet hour, after the nightly data purge.
    now = timezone.now()
    first = now.replace(hour=20, minute=30, second=0, microsecond=0)
    if first <= now:
        first += timedelta(days=1)
    Schedule.objects.get_or_create(
        name=NAME,
        defaults={"func": FUNC, "schedule_type": "D", "repeats": -1, "next_run": first},
    )


def backward(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME, func=FUNC).delete()


# Erasing and exporting a person are administrators' too (the ErasureJob permissions).
VIEWERS = {
    "Administrator": ["view_auditevent", "view_consentrecord", "erase_person", "export_person"]
}


def roles_forward(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config("privacy")
    app_config.models_module = True  # as campaigns 0002: the historical app config has none
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in VIEWERS.items():
        group, _created = Group.objects.get_or_create(name=role)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="privacy", codename__in=codenames)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("privacy", "0002_erasure"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]
    operations = [
        migrations.RunPython(forward, backward),
        migrations.RunPython(roles_forward, migrations.RunPython.noop),
    ]
