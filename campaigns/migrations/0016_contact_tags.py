"""Contact tags (a JSON list of tag keys, with a GIN index on PostgreSQL), the Tag vocabulary,
and the SQL functions segment rules compare with on PostgreSQL: loa_fold (diacritics removed,
lower case), loa_number and loa_date. On SQLite the same functions are Python ones, registered
on each connection by campaigns.contacts.segments (from campaigns.segment_rules). Old segments'
rules keep their format (a list of rules): no data migration is needed."""

import unicodedata

from django.db import DatabaseError, migrations, models, transaction


def _fold_pairs() -> tuple[str, str]:
    """translate()'s arguments: every precomposed Latin letter with a diacritic (Vietnamese
    among them, both cases) -> its lower-case base letter, đ/Đ -> d; combining marks (text in
    NFD) have no counterpart, so translate() deletes them."""
    src, dst = ["đĐ"], ["dd"]
    for cp in [*range(0x00C0, 0x0250), *range(0x1E00, 0x1F00)]:
        ch = chr(cp)
        base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
        if base != ch and len(base) == 1 and base.isascii() and base.isalpha():
            src.append(ch)
            dst.append(base.lower())
    marks = "".join(chr(cp) for cp in range(0x0300, 0x0370))
    return "".join(src) + marks, "".join(dst)


def create_fold(connection) -> str:
    """loa_fold: unaccent (a C dictionary lookup, trusted contrib extension) when it can be
    installed, else translate() over the letters of _fold_pairs. Measured on 1,000,000
    contacts: translate() scans its 600-letter argument for every character (51 s for a
    "contains" over every contact, under load), unaccent takes 0.74 s.
    The ASCII test spares the fallback most of its work (most text has no diacritic)."""
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
            cur.execute(
                # STABLE as unaccent() is: PostgreSQL inlines a SQL function only if it claims
                # no more than its body, and a call per row that is not inlined cost 4x
                # (3.1 s against 0.74 s for a "contains" over 1,000,000 contacts).
                "CREATE OR REPLACE FUNCTION loa_fold(t text) RETURNS text"
                " LANGUAGE sql STABLE PARALLEL SAFE STRICT"
                " AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, t)) $$"
            )
        return "unaccent"
    except DatabaseError:
        pass
    src, dst = _fold_pairs()
    with connection.cursor() as cur:
        cur.execute(
            "CREATE OR REPLACE FUNCTION loa_fold(t text) RETURNS text"
            " LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$ SELECT CASE"
            " WHEN t ~ '^[\\x01-\\x7f]*$' THEN lower(t) ELSE lower(translate(t, %s, %s)) END $$",
            [src, dst],
        )
    return "translate"


def create_functions(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    create_fold(schema_editor.connection)
    schema_editor.execute(
        r"""
CREATE OR REPLACE FUNCTION loa_number(t text) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
SELECT CASE
  WHEN s ~ '^[+-]?[1-9][0-9]{0,2}([.,])[0-9]{3}(\1[0-9]{3})*$'
    THEN translate(s, '.,', '')::double precision
  WHEN s ~ '^[+-]?[0-9]+([.,][0-9]+)?$' THEN replace(s, ',', '.')::double precision
END FROM (SELECT regexp_replace(t, '\s+', '', 'g') AS s) x
$$;
CREATE OR REPLACE FUNCTION loa_date(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
SELECT CASE WHEN y IS NULL OR y < 1 OR m NOT BETWEEN 1 AND 12 OR d < 1 THEN NULL
  ELSE CASE WHEN d <= extract(day FROM make_date(y, m, 1) + interval '1 month - 1 day')
    THEN to_char(make_date(y, m, d), 'YYYY-MM-DD') END END
FROM (SELECT r[1]::int AS y, r[2]::int AS m, r[3]::int AS d FROM (SELECT coalesce(
  regexp_match(t, '^\s*([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:[ T].*)?$'),
  (SELECT ARRAY[x[3], x[2], x[1]]
     FROM regexp_match(t, '^\s*([0-9]{1,2})[/.-]([0-9]{1,2})[/.-]([0-9]{4})\s*$') x)
) AS r) p) q
$$;
"""
    )
    # jsonb_path_ops: smaller and faster than the default opclass for @> (the only operator
    # "has tag" uses). Partial: a contact without tags (most of them, every row of an import
    # without a tags column) adds nothing to it; a full index made the INSERT of 200,000 untagged
    # contacts ~17% slower (measured A/B). Queries repeat the predicate so the planner can use
    # it (campaigns.contacts.segments._tag_q). Measured at 1,000,000 contacts: docs/BENCHMARKS.md.
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS contact_tags_gin ON campaigns_contact"
        " USING gin (tags jsonb_path_ops) WHERE NOT (tags = '[]'::jsonb)"
    )


def drop_functions(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "DROP INDEX IF EXISTS contact_tags_gin;"
        " DROP FUNCTION IF EXISTS loa_fold(text), loa_number(text), loa_date(text);"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0015_campaign_test_send"),
    ]

    operations = [
        migrations.CreateModel(
            name="Tag",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("key", models.CharField(editable=False, max_length=50, unique=True)),
                ("name", models.CharField(max_length=50, verbose_name="name")),
            ],
            options={"verbose_name": "tag", "verbose_name_plural": "tags", "ordering": ["name"]},
        ),
        migrations.AddField(
            model_name="contact",
            name="tags",
            field=models.JSONField(blank=True, db_default=[], default=list, verbose_name="tags"),
        ),
        migrations.AlterField(
            model_name="segment",
            name="rules",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text='A list of rules, e.g. [{"attribute": "city", "op": "contains", '
                '"value": "ha noi"}]; a group: {"match": "any", "rules": [...]}. Text '
                "comparisons ignore accents and case.",
                verbose_name="rules",
            ),
        ),
        migrations.RunPython(create_functions, drop_functions),
    ]
