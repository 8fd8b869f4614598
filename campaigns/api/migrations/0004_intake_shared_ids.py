from django.db import migrations


def share_the_intake_ids(apps, schema_editor):
    """PostgreSQL: an ApiMessage made without an id (bench/api_callbacks.py, a shell) takes the
    next intake id too, so it never collides with the id a 202 answered (the intake worker gives
    each ApiMessage its intake row's id). SQLite keeps two counters: its tests make both."""
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("ALTER TABLE api_apimessage ALTER COLUMN id DROP IDENTITY IF EXISTS")
        cursor.execute(
            "ALTER TABLE api_apimessage ALTER COLUMN id SET DEFAULT "
            "nextval(pg_get_serial_sequence('api_apiintake', 'id'))"
        )
        # Above every id either table holds.
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('api_apiintake', 'id'), GREATEST("
            "(SELECT COALESCE(MAX(id), 0) FROM api_apimessage),"
            "(SELECT COALESCE(MAX(id), 0) FROM api_apiintake), 1))"
        )


class Migration(migrations.Migration):
    dependencies = [("api", "0003_intake_queue")]

    operations = [migrations.RunPython(share_the_intake_ids, migrations.RunPython.noop)]
