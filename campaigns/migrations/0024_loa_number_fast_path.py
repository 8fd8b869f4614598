# loa_number (the number rules of segments, PostgreSQL) with a fast path for plain digits, which is
# what an import of amounts mostly stores: "40000000" is cast directly, anything else goes through
# the parsing body of 0016, unchanged, now named loa_number_parse. The new loa_number is a plain
# CASE with no FROM clause and not STRICT, so PostgreSQL inlines it into the query instead of
# calling a SQL function per row: a number rule over 10,000,000 contacts took 16.2 s before, 4.9 s
# after (docs/BENCHMARKS.md, "10M tenant"). The same results for every input: plain digits have no
# separator (0016's first branch cannot match) and its second branch casts them as is.
# Online: CREATE OR REPLACE FUNCTION is a catalog change; no index uses loa_number.
from django.db import migrations

PARSE_BODY = r"""
SELECT CASE
  WHEN s ~ '^[+-]?[1-9][0-9]{0,2}([.,])[0-9]{3}(\1[0-9]{3})*$'
    THEN translate(s, '.,', '')::double precision
  WHEN s ~ '^[+-]?[0-9]+([.,][0-9]+)?$' THEN replace(s, ',', '.')::double precision
END FROM (SELECT regexp_replace(t, '\s+', '', 'g') AS s) x
"""

FORWARD = f"""
CREATE OR REPLACE FUNCTION loa_number_parse(t text) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $${PARSE_BODY}$$;
CREATE OR REPLACE FUNCTION loa_number(t text) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT CASE WHEN t ~ '^[0-9]+$' THEN t::double precision ELSE loa_number_parse(t) END
$$;
"""

BACKWARD = f"""
CREATE OR REPLACE FUNCTION loa_number(t text) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $${PARSE_BODY}$$;
DROP FUNCTION IF EXISTS loa_number_parse(text);
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0023_merge_wave4"),
    ]

    operations = [migrations.RunPython(forward, backward)]
