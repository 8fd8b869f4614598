# The third wave's branches each added one campaigns migration on top of 0018 (consent setting,
# fallback steps; the API's origin and typed attributes): they touch different tables and fields,
# so they apply in any order and this merge only joins them.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0019_consent_setting"),
        ("campaigns", "0019_fallback_steps"),
        ("campaigns", "0019_api_origin"),
        ("campaigns", "0019_attribute_types"),
    ]

    operations = []
