"""Marketers record opt-outs (issue 17, item 5): a customer who says "stop" on the phone to a
marketer is opted out by that marketer, by phone, without waiting for contact staff."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {"Marketer": ["add_optout", "view_optout"]}


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
            *Permission.objects.filter(content_type__app_label="campaigns", codename__in=codenames)
        )


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0016_contact_tags")]
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
