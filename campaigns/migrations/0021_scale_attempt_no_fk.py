# MessageAttempt.message without its foreign-key constraint (the index stays): the constraint's
# trigger probed the attempts table once for every message the retention purge deleted.
# Online: DROP CONSTRAINT is a catalog change (an ACCESS EXCLUSIVE lock held for milliseconds, no
# scan, no rewrite; measured on the 50M-message database, docs/BENCHMARKS.md "10M tenant").
# Another helper adds a campaigns migration on top of 0020 too: the integrator merges them.
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0020_merge_wave3"),
    ]

    operations = [
        migrations.AlterField(
            model_name="messageattempt",
            name="message",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="attempts_log",
                to="campaigns.message",
                verbose_name="message",
            ),
        ),
    ]
