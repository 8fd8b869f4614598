# Issue 16: phones of Cambodia. Where an import reads local-format phones (0971234567 is valid
# in both countries), per list and per import, and how many rows it read in each country.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0013_campaign_subject"),
    ]

    operations = [
        migrations.AddField(
            model_name="contactlist",
            name="default_country",
            field=models.CharField(
                choices=[("VN", "Vietnam (+84)"), ("KH", "Cambodia (+855)")],
                default="VN",
                help_text=(
                    "The country of phones written without +84/+855 (like 0971 234 567) in "
                    "imports into this list, unless the import chooses another."
                ),
                max_length=2,
                verbose_name="read local numbers as",
            ),
        ),
        migrations.AddField(
            model_name="contactimport",
            name="country",
            field=models.CharField(
                blank=True,
                choices=[("VN", "Vietnam (+84)"), ("KH", "Cambodia (+855)")],
                max_length=2,
                verbose_name="local numbers read as",
            ),
        ),
        migrations.AddField(
            model_name="contactimport",
            name="country_counts",
            field=models.JSONField(blank=True, default=dict, verbose_name="rows per country"),
        ),
    ]
