"""Segments came after the roles (0002): give the groups their segment permissions."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {
    "Administrator": ["view_segment", "add_segment", "change_segment", "delete_segment"],
    "Marketer": ["view_segment", "add_segment", "change_segment"],
    "Contact staff": ["view_segment", "add_segment", "change_segment", "delete_segment"],
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
            *Permission.objects.filter(content_type__app_label="campaigns", codename__in=codenames)
        )


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0006_message_indexes")]
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
