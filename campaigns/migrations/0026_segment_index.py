# The segment index (PostgreSQL; on SQLite its tables are created empty and never read): one
# narrow row per contact holding what segment rules compare, so an exact count reads 10,000,000
# narrow rows instead of 10,000,000 contacts' JSON.
# docs/ARCHITECTURE.md ("The segment index") says why and how; campaigns.contacts.segment_index
# claims its slots, builds it and counts on it.
#
# - campaigns_segmentindex: contact_id, tags (a copy), lists (the ids of the contact's lists) and
#   slots: t1..t12 hold loa_fold(attributes->>key), n1..n6 loa_number(...), d1..d6 loa_date(...),
#   for the key campaigns_segmentindexslot assigns to each (NULL while unassigned).
# - It covers the contacts up to an id (campaigns_segmentindexstate.covered_upto): a count is the
#   index's for those, plus the contacts' own query for the newer ones. The build moves the mark
#   up in slices; new contacts (an import's million) cost their insert nothing here.
# - Below the mark, statement-level triggers (one set-based statement per write statement,
#   transition tables, never a call per row) on contacts and memberships keep every row exact,
#   whatever writes: the import's set-based SQL, the ORM, the tags' bulk UPDATEs, erasure.
#
# Online on a large table: CREATE TABLE and CREATE TRIGGER take a short SHARE ROW EXCLUSIVE lock
# on contacts and memberships (writers wait milliseconds, readers never); nothing is copied here.
import django.contrib.postgres.fields
from django.db import migrations, models

TEXT_SLOTS, NUMBER_SLOTS, DATE_SLOTS = 12, 6, 6
SLOTS = (
    [(f"t{i}", "text") for i in range(1, TEXT_SLOTS + 1)]
    + [(f"n{i}", "number") for i in range(1, NUMBER_SLOTS + 1)]
    + [(f"d{i}", "date") for i in range(1, DATE_SLOTS + 1)]
)
READER = {"text": "loa_fold", "number": "loa_number", "date": "loa_date"}
SQL_TYPE = {"text": "text", "number": "double precision", "date": "text"}
# Beside each date slot, its day of the year as a number (month * 100 + day: 1204 for 4
# December), what birthday and anniversary rules compare: an integer IN list costs a tenth of
# substr() of the text on 10M rows (1.1 s against 0.4 s for the whole count).
MONTHDAYS = [(f"m{col[1:]}", col) for col, kind in SLOTS if kind == "date"]
COLUMNS = ", ".join([col for col, _ in SLOTS] + [md for md, _ in MONTHDAYS])


def _values(src: str) -> str:
    """The slots' values computed from the contact row `src` (keys in variables k_<col>)."""
    return ", ".join(
        [f"{READER[kind]}({src}.attributes ->> k_{col})" for col, kind in SLOTS]
        + [
            f"replace(substr(loa_date({src}.attributes ->> k_{col}), 6, 5), '-', '')::int"
            for _, col in MONTHDAYS
        ]
    )


SET_SLOTS = ", ".join(f"{col} = excluded.{col}" for col in COLUMNS.split(", "))
DECLARE_KEYS = "\n".join(f"  k_{col} text;" for col, _ in SLOTS)
# One read of the slot map per statement: a plain column per slot afterwards.
READ_KEYS = "\n".join(f"  k_{col} := m ->> '{col}';" for col, _ in SLOTS)


# Memberships added (new_rows) and removed (old_rows), as increments of the rows' lists.
# Every trigger takes its rows' locks in contact id order (ORDER BY, or a FOR UPDATE before an
# UPDATE ... FROM, whose order is the join's): two imports adding the same contacts to two
# lists wait for each other instead of deadlocking (seen, before the order, in
# tests/contacts/test_segment_index.py's concurrent test).
ADD_LISTS = """
  SELECT covered_upto INTO w FROM campaigns_segmentindexstate WHERE id = 1;
  INSERT INTO campaigns_segmentindex AS f (contact_id, lists)
  SELECT contact_id, array_agg(contact_list_id) FROM new_rows WHERE contact_id <= w
  GROUP BY contact_id ORDER BY contact_id
  ON CONFLICT (contact_id) DO UPDATE SET lists = f.lists || excluded.lists
    WHERE NOT f.lists @> excluded.lists;"""
REMOVE_LISTS = """
  PERFORM 1 FROM campaigns_segmentindex WHERE contact_id IN (SELECT contact_id FROM old_rows)
    ORDER BY contact_id FOR UPDATE;
  UPDATE campaigns_segmentindex f
  SET lists = ARRAY(SELECT x FROM unnest(f.lists) x WHERE x <> ALL (d.ids))
  FROM (SELECT contact_id, array_agg(contact_list_id) AS ids FROM old_rows GROUP BY contact_id) d
  WHERE f.contact_id = d.contact_id AND f.lists && d.ids;"""


def _function(name: str, body: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  w bigint;
  m jsonb;
{DECLARE_KEYS}
BEGIN
  SELECT covered_upto INTO w FROM campaigns_segmentindexstate WHERE id = 1;
  SELECT coalesce(jsonb_object_agg(col, key) FILTER (WHERE key IS NOT NULL), '{{}}'::jsonb)
    INTO m FROM campaigns_segmentindexslot;
{READ_KEYS}
{body}
  RETURN NULL;
END
$fn$;
"""


FORWARD = [
    f"""
CREATE TABLE campaigns_segmentindex (
  contact_id bigint PRIMARY KEY,
  tags jsonb NOT NULL DEFAULT '[]'::jsonb,
  lists bigint[] NOT NULL DEFAULT '{{}}',
  {", ".join(f"{col} {SQL_TYPE[kind]}" for col, kind in SLOTS)},
  {", ".join(f"{md} integer" for md, _ in MONTHDAYS)}
)""",
    """
CREATE TABLE campaigns_segmentindexslot (
  col varchar(4) PRIMARY KEY,
  kind varchar(8) NOT NULL,
  key text NULL,
  ready boolean NOT NULL DEFAULT false,
  assigned_at timestamptz NULL,
  covered_at_assign bigint NOT NULL DEFAULT 0
)""",
    "INSERT INTO campaigns_segmentindexslot (col, kind) VALUES "
    + ", ".join(f"('{col}', '{kind}')" for col, kind in SLOTS),
    """
CREATE TABLE campaigns_segmentindexstate (
  id smallint PRIMARY KEY,
  covered_upto bigint NOT NULL DEFAULT 0,
  refill_cursor bigint NULL,
  refill_upto bigint NULL,
  refill_keys jsonb NULL,
  refill_started_at timestamptz NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
)""",
    "INSERT INTO campaigns_segmentindexstate (id) VALUES (1)",
    # New contacts are the build's (they are above the mark), except those written with an id
    # below it (a fixture, a restore): their row, with the lists they are already in.
    _function(
        "loa_segment_index_contacts_inserted",
        f"""
  INSERT INTO campaigns_segmentindex (contact_id, tags, lists, {COLUMNS})
  SELECT n.id, n.tags, coalesce((SELECT array_agg(mb.contact_list_id)
      FROM campaigns_contactlistmembership mb WHERE mb.contact_id = n.id), '{{}}'),
    {_values("n")}
  FROM new_rows n WHERE n.id <= w ORDER BY n.id
  ON CONFLICT (contact_id) DO UPDATE SET tags = excluded.tags, lists = excluded.lists,
    {SET_SLOTS};""",
    ),
    # Changed contacts below the mark: only those whose attributes or tags changed (an import
    # that touches updated_at only, a name change: no write). Lists are the memberships'.
    _function(
        "loa_segment_index_contacts_updated",
        f"""
  INSERT INTO campaigns_segmentindex (contact_id, tags, {COLUMNS})
  SELECT n.id, n.tags, {_values("n")}
  FROM new_rows n JOIN old_rows o ON o.id = n.id
  WHERE n.id <= w
    AND (n.attributes IS DISTINCT FROM o.attributes OR n.tags IS DISTINCT FROM o.tags)
  ORDER BY n.id
  ON CONFLICT (contact_id) DO UPDATE SET tags = excluded.tags, {SET_SLOTS};""",
    ),
    """
CREATE OR REPLACE FUNCTION loa_segment_index_contacts_deleted() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM 1 FROM campaigns_segmentindex WHERE contact_id IN (SELECT id FROM old_rows)
    ORDER BY contact_id FOR UPDATE;
  DELETE FROM campaigns_segmentindex WHERE contact_id IN (SELECT id FROM old_rows);
  RETURN NULL;
END
$fn$;
-- Contacts emptied (ids may start again from 1): the index is empty and covers nothing.
CREATE OR REPLACE FUNCTION loa_segment_index_contacts_truncated() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  TRUNCATE campaigns_segmentindex;
  UPDATE campaigns_segmentindexstate SET covered_upto = 0, refill_cursor = NULL,
    refill_upto = NULL, refill_keys = NULL, updated_at = now();
  RETURN NULL;
END
$fn$;
""",
    # Memberships change lists only, as increments: UPDATE re-reads a row another transaction
    # changed meanwhile (READ COMMITTED), so two imports into two lists both land. Above the
    # mark there is no row to change: the build reads the memberships when it gets there.
    f"""
CREATE OR REPLACE FUNCTION loa_segment_index_members_added() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
  w bigint;
BEGIN
{ADD_LISTS}
  RETURN NULL;
END
$fn$;
CREATE OR REPLACE FUNCTION loa_segment_index_members_removed() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
{REMOVE_LISTS}
  RETURN NULL;
END
$fn$;
CREATE OR REPLACE FUNCTION loa_segment_index_members_moved() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
  w bigint;
BEGIN
{REMOVE_LISTS}
{ADD_LISTS}
  RETURN NULL;
END
$fn$;
CREATE OR REPLACE FUNCTION loa_segment_index_members_truncated() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  UPDATE campaigns_segmentindex SET lists = '{{}}' WHERE lists <> '{{}}';
  RETURN NULL;
END
$fn$;
""",
    # PostgreSQL allows transition tables on one event per trigger: a trigger per event.
    """
CREATE TRIGGER loa_segment_index_ins AFTER INSERT ON campaigns_contact
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION loa_segment_index_contacts_inserted();
CREATE TRIGGER loa_segment_index_upd AFTER UPDATE ON campaigns_contact
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION loa_segment_index_contacts_updated();
CREATE TRIGGER loa_segment_index_del AFTER DELETE ON campaigns_contact
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION loa_segment_index_contacts_deleted();
CREATE TRIGGER loa_segment_index_trunc AFTER TRUNCATE ON campaigns_contact
  FOR EACH STATEMENT EXECUTE FUNCTION loa_segment_index_contacts_truncated();
CREATE TRIGGER loa_segment_index_ins AFTER INSERT ON campaigns_contactlistmembership
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION loa_segment_index_members_added();
CREATE TRIGGER loa_segment_index_del AFTER DELETE ON campaigns_contactlistmembership
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION loa_segment_index_members_removed();
CREATE TRIGGER loa_segment_index_upd AFTER UPDATE ON campaigns_contactlistmembership
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION loa_segment_index_members_moved();
CREATE TRIGGER loa_segment_index_trunc AFTER TRUNCATE ON campaigns_contactlistmembership
  FOR EACH STATEMENT EXECUTE FUNCTION loa_segment_index_members_truncated();
""",
]

BACKWARD = """
DROP TRIGGER IF EXISTS loa_segment_index_ins ON campaigns_contact;
DROP TRIGGER IF EXISTS loa_segment_index_upd ON campaigns_contact;
DROP TRIGGER IF EXISTS loa_segment_index_del ON campaigns_contact;
DROP TRIGGER IF EXISTS loa_segment_index_trunc ON campaigns_contact;
DROP TRIGGER IF EXISTS loa_segment_index_ins ON campaigns_contactlistmembership;
DROP TRIGGER IF EXISTS loa_segment_index_upd ON campaigns_contactlistmembership;
DROP TRIGGER IF EXISTS loa_segment_index_del ON campaigns_contactlistmembership;
DROP TRIGGER IF EXISTS loa_segment_index_trunc ON campaigns_contactlistmembership;
DROP FUNCTION IF EXISTS loa_segment_index_contacts_inserted(), loa_segment_index_contacts_updated(),
  loa_segment_index_contacts_deleted(), loa_segment_index_contacts_truncated(),
  loa_segment_index_members_added(), loa_segment_index_members_removed(),
  loa_segment_index_members_moved(), loa_segment_index_members_truncated();
DROP TABLE IF EXISTS campaigns_segmentindex, campaigns_segmentindexslot,
  campaigns_segmentindexstate;
"""


# Elsewhere (SQLite): the tables only, empty and unread (counts read the contacts there), so
# what walks every model (dumpdata, the erase and secrets tests) finds them.
OTHER_FORWARD = [
    "CREATE TABLE campaigns_segmentindex (contact_id bigint PRIMARY KEY, tags text NOT NULL"
    " DEFAULT '[]', lists text NOT NULL DEFAULT '[]', "
    + ", ".join(f"{col} {'real' if kind == 'number' else 'text'}" for col, kind in SLOTS)
    + ", "
    + ", ".join(f"{md} integer" for md, _ in MONTHDAYS)
    + ")",
    "CREATE TABLE campaigns_segmentindexslot (col varchar(4) PRIMARY KEY, kind varchar(8) NOT"
    " NULL, key text NULL, ready bool NOT NULL DEFAULT 0, assigned_at datetime NULL,"
    " covered_at_assign bigint NOT NULL DEFAULT 0)",
    "CREATE TABLE campaigns_segmentindexstate (id smallint PRIMARY KEY, covered_upto bigint NOT"
    " NULL DEFAULT 0, refill_cursor bigint NULL, refill_upto bigint NULL, refill_keys text NULL,"
    " refill_started_at datetime NULL, updated_at datetime NOT NULL DEFAULT CURRENT_TIMESTAMP)",
]
OTHER_BACKWARD = [
    "DROP TABLE IF EXISTS campaigns_segmentindex",
    "DROP TABLE IF EXISTS campaigns_segmentindexslot",
    "DROP TABLE IF EXISTS campaigns_segmentindexstate",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        for sql in OTHER_FORWARD:
            schema_editor.execute(sql, params=None)
        return
    for sql in FORWARD:
        schema_editor.execute(sql, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        for sql in OTHER_BACKWARD:
            schema_editor.execute(sql, params=None)
        return
    schema_editor.execute(BACKWARD, params=None)


def schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name="loa: segment index",
        defaults={
            "func": "campaigns.tasks.segment_index_build_task",
            "schedule_type": "I",
            "minutes": 1,
            "repeats": -1,
        },
    )


def unschedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="loa: segment index").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0025_loa_date_fast_path"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [
        migrations.CreateModel(
            name="SegmentIndex",
            fields=[
                ("contact_id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("tags", models.JSONField(default=list)),
                (
                    "lists",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.BigIntegerField(), default=list, size=None
                    ),
                ),
                *[
                    (
                        col,
                        models.FloatField(null=True)
                        if kind == "number"
                        else models.TextField(null=True),
                    )
                    for col, kind in SLOTS
                ],
                *[(md, models.IntegerField(null=True)) for md, _ in MONTHDAYS],
            ],
            options={"db_table": "campaigns_segmentindex", "managed": False},
        ),
        migrations.CreateModel(
            name="SegmentIndexSlot",
            fields=[
                ("col", models.CharField(max_length=4, primary_key=True, serialize=False)),
                ("kind", models.CharField(max_length=8)),
                ("key", models.TextField(null=True)),
                ("ready", models.BooleanField(default=False)),
                ("assigned_at", models.DateTimeField(null=True)),
                ("covered_at_assign", models.BigIntegerField(default=0)),
            ],
            options={"db_table": "campaigns_segmentindexslot", "managed": False},
        ),
        migrations.CreateModel(
            name="SegmentIndexState",
            fields=[
                ("id", models.SmallIntegerField(primary_key=True, serialize=False)),
                ("covered_upto", models.BigIntegerField(default=0)),
                ("refill_cursor", models.BigIntegerField(null=True)),
                ("refill_upto", models.BigIntegerField(null=True)),
                ("refill_keys", models.JSONField(null=True)),
                ("refill_started_at", models.DateTimeField(null=True)),
                ("updated_at", models.DateTimeField()),
            ],
            options={"db_table": "campaigns_segmentindexstate", "managed": False},
        ),
        migrations.RunPython(forward, backward),
        migrations.RunPython(schedule, unschedule),
    ]
