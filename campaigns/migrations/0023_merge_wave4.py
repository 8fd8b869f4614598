# Joins the fourth wave's two branches of the campaigns app: the fallback step's mode (issue 19)
# and the 10M tenant's indexes (issue 22). Nothing to run.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0021_native_fallback_mode"),
        ("campaigns", "0022_scale_message_campaign_status_indexes"),
    ]

    operations = []
