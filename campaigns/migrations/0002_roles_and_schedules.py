"""Roles as Django groups, and the campaigns' every-minute django-q2 schedule."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = {
    "Marketer": [
        "campaigns.view_campaign", "campaigns.add_campaign", "campaigns.change_campaign",
        "campaigns.send_campaign", "campaigns.view_campaignevent", "campaigns.view_message",
        "campaigns.view_messageattempt", "campaigns.view_contact", "campaigns.view_contactlist",
        "campaigns.view_optout", "templates_app.view_template", "templates_app.view_templateparam",
        "providers.view_channel", "providers.view_officialaccount", "webhooks.view_inboundmessage",
    ],
    "Contact staff": [
        "campaigns.view_contact", "campaigns.add_contact", "campaigns.change_contact", "campaigns.delete_contact",
        "campaigns.view_contactlist", "campaigns.add_contactlist", "campaigns.change_contactlist",
        "campaigns.view_contactimport", "campaigns.add_contactimport",
        "campaigns.view_optout", "campaigns.add_optout", "campaigns.change_optout", "campaigns.delete_optout",
        "campaigns.view_contactlistmembership", "campaigns.add_contactlistmembership",
        "campaigns.delete_contactlistmembership", "webhooks.view_inboundmessage",
    ],
    "Administrator": [
        "providers.*", "templates_app.*", "campaigns.*", "webhooks.*", "auth.view_user", "auth.add_user",
        "auth.change_user", "auth.view_group", "auth.change_group", "django_q.*",
    ],
}


def create_roles(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        chosen = []
        for perm in perms:
            app_label, codename = perm.split(".")
            qs = Permission.objects.filter(content_type__app_label=app_label)
            if codename != "*":
                qs = qs.filter(codename=codename)
            chosen += list(qs)
        group.permissions.set(chosen)


def create_schedules(apps, schema_editor):
    # The webhooks tick is scheduled by webhooks' own migration (0004_webhooks_schedules):
    # each room schedules its own tasks.
    Schedule = apps.get_model("django_q", "Schedule")
    for name, func in [("loa: campaigns tick", "campaigns.tasks.scheduler_tick")]:
        Schedule.objects.update_or_create(name=name, defaults={"func": func, "schedule_type": "I", "minutes": 1,
                                                               "repeats": -1})


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0001_initial"),
        ("providers", "0001_initial"),
        ("templates_app", "0001_initial"),
        ("webhooks", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [
        migrations.RunPython(create_roles, migrations.RunPython.noop),
        migrations.RunPython(create_schedules, migrations.RunPython.noop),
    ]
