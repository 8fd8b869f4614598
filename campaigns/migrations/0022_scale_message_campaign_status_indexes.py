# Two partial indexes for the campaign page and the message list at 50M messages: the `sent` rows
# of a campaign with their send time (the receipts panel counts them from the index alone) and
# the `failed` rows of a campaign in id order with their error (the failure reasons and the
# failed-messages list read the newest ones from the index alone). Partial: materializing a
# campaign inserts `pending` rows, which neither index holds.
#
# Online on PostgreSQL: CREATE INDEX CONCURRENTLY (no lock that stops writes; the migration is
# not atomic, as CONCURRENTLY requires), a plain CREATE INDEX elsewhere (SQLite). Measured on
# the 50M-message database: docs/BENCHMARKS.md ("10M tenant"). If a concurrent build fails it
# leaves an INVALID index behind: the reverse (or DROP INDEX CONCURRENTLY) removes it and the
# migration runs again.
# Another helper adds a campaigns migration on top of 0020 too: the integrator merges them.
from django.db import migrations, models


class AddIndexOnline(migrations.AddIndex):
    """AddIndex, built CONCURRENTLY on PostgreSQL (the migration must be atomic = False)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.add_index(model, self.index, concurrently=True)
        else:
            schema_editor.add_index(model, self.index)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.remove_index(model, self.index, concurrently=True)
        else:
            schema_editor.remove_index(model, self.index)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("campaigns", "0021_scale_attempt_no_fk"),
    ]

    operations = [
        AddIndexOnline(
            model_name="message",
            index=models.Index(
                fields=["campaign", "sent_at"],
                name="msg_sent_by_campaign_idx",
                condition=models.Q(status="sent"),
            ),
        ),
        AddIndexOnline(
            model_name="message",
            index=models.Index(
                fields=["campaign", "id"],
                name="msg_failed_by_campaign_idx",
                condition=models.Q(status="failed"),
                include=["error_code", "error_class"],
            ),
        ),
    ]
