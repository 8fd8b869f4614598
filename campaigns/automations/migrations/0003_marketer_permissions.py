"""Marketers run automations (issue 20): they create, edit, pause and preview them and read the
runs and the holidays; administrators edit the holidays."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {
    "Marketer": [
        "view_automation",
        "add_automation",
        "change_automation",
        "view_automationrun",
        "view_holiday",
    ]
}


def grant(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in GRANTS.items():
        group = Group.objects.filter(name=role).first()
        if group is None:
            continue
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="automations", codename__in=codenames)
        )


class Migration(migrations.Migration):
    dependencies = [("automations", "0002_tick_schedule_and_holidays"), ("campaigns", "0017_marketer_optout")]
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
