# The applier's queue index (webhooks.models.WebhookEvent.Meta). On PostgreSQL it is built
# CONCURRENTLY (this migration is non-atomic): no write lock while callbacks keep arriving; the
# index is small (only the events waiting), the build is one scan of the table (seconds on a
# table of millions of events). A failed build leaves an INVALID index: it is dropped first, so
# the migration can be re-run. Other databases (SQLite in tests) run Django's AddIndex.

from django.db import migrations, models


class AddIndexOnline(migrations.AddIndex):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {self.index.name}")
            schema_editor.add_index(model, self.index, concurrently=True)
        return None

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.remove_index(model, self.index, concurrently=True)
        return None


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("webhooks", "0006_field_names"),
    ]

    operations = [
        AddIndexOnline(
            model_name="webhookevent",
            index=models.Index(
                condition=models.Q(("outcome", "received")),
                fields=["id"],
                name="webhook_received_queue_idx",
            ),
        ),
    ]
