"""Merging into existing contacts, opt-outs, consent evidence, lists (SQLite batches and the
PostgreSQL set-based SQL must agree: run this file on both)."""

import pytest
from django.conf import settings as settings_module
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.contacts.importing import sinks
from campaigns.contacts.importing.run import contact_import_prepare, contact_import_run
from campaigns.contacts.importing.sinks import merge_values
from campaigns.contacts.search import contact_search_text
from campaigns.models import Contact, ContactImport, ContactList, ContactListMembership, OptOut
from providers.shared.text import search_key
from tests.contacts.conftest import assert_adds_up, simulate_a_concurrent_writer

pytestmark = pytest.mark.django_db

FILE = (
    "phone,name,city,tier,empty\r\n"
    "0987654321,New Name,Huế,silver,\r\n"
    "0912345678,Fresh,Vinh,bronze,\r\n"
).encode()


@pytest.fixture(params=["fast", "concurrent"])
def save_path(request, monkeypatch):
    """PostgreSQL saves with plain INSERTs under a lock, or, when another writer inserted one of
    the phones meanwhile, with INSERT ... ON CONFLICT: both must give the same result."""
    from django.db import connection

    if request.param == "concurrent":
        if connection.vendor != "postgresql":
            pytest.skip("PostgreSQL only")
        simulate_a_concurrent_writer(monkeypatch)
    return request.param


@pytest.fixture
def existing(save_path):
    return Contact.objects.create(
        phone="84987654321",
        name="Old Name",
        attributes={"city": "", "tier": "gold", "empty": "kept"},
        search_text="old name",
        source="crm",
    )


@pytest.mark.parametrize(
    "policy, name, attributes",
    [
        ("keep", "Old Name", {"city": "", "tier": "gold", "empty": "kept"}),
        ("overwrite", "New Name", {"city": "Huế", "tier": "silver", "empty": "kept"}),
        ("fill", "Old Name", {"city": "Huế", "tier": "gold", "empty": "kept"}),
    ],
)
def test_merge_policies(run_import, existing, policy, name, attributes):
    imp = run_import(FILE, merge=policy)
    assert_adds_up(imp)
    assert (imp.imported_count, imp.updated_count) == (1, 1)
    existing.refresh_from_db()
    assert existing.name == name
    assert existing.attributes == attributes  # a blank cell never erases a value
    assert existing.search_text == contact_search_text(name)
    # consent evidence stays the original one
    assert (existing.source, existing.source_import_id) == ("crm", None)


def test_merge_values_matches_the_sql_rules():
    old = {"a": "1", "b": "", "c": None}
    new = {"a": "x", "b": "y", "c": "z", "d": "w"}
    assert merge_values(policy="keep", old_name="O", old_attrs=old, name="N", attrs=new) == (
        "O",
        old,
    )
    assert merge_values(policy="overwrite", old_name="O", old_attrs=old, name="", attrs=new) == (
        "O",
        {"a": "x", "b": "y", "c": "z", "d": "w"},
    )
    assert merge_values(policy="fill", old_name="", old_attrs=old, name="N", attrs=new) == (
        "N",
        {"a": "1", "b": "y", "c": "z", "d": "w"},
    )


def test_an_import_never_clears_an_opt_out(run_import, existing):
    OptOut.objects.create(contact=existing, channel_kind=OptOut.ALL, reason="STOP")
    OptOut.objects.create(contact=existing, channel_kind="sms", reason="no sms")
    imp = run_import(FILE, merge="overwrite")
    assert_adds_up(imp)
    assert set(existing.opt_outs.values_list("channel_kind", flat=True)) == {"all", "sms"}


def test_consent_evidence_is_recorded(run_import):
    imp = run_import(FILE, "crm-export.csv")
    c = Contact.objects.get(phone="84912345678")
    assert c.source == "import:crm-export.csv"
    assert c.source_import_id == imp.pk
    assert c.source_row == 3  # the row number Excel shows (header = row 1)
    assert c.created_at is not None


def test_list_membership_and_count(run_import, contact_list, save_path):
    other = ContactList.objects.create(name="Other")
    run_import(FILE)
    run_import(FILE)  # the same file again: no duplicate memberships
    imp = run_import(FILE, target=other)
    assert_adds_up(imp)
    assert (imp.imported_count, imp.updated_count) == (0, 2)
    contact_list.refresh_from_db()
    other.refresh_from_db()
    assert (contact_list.contact_count, other.contact_count) == (2, 2)
    assert ContactListMembership.objects.count() == 4


def test_explicit_mapping_with_renamed_attribute(run_import):
    mapping = {"has_header": True, "phone": 0, "name": None, "attributes": {"2": "tinh"}}
    imp = run_import(FILE, mapping=mapping)
    assert_adds_up(imp)
    c = Contact.objects.get(phone="84912345678")
    assert (c.name, c.attributes) == ("", {"tinh": "Vinh"})


def test_many_rows_cross_batches(run_import, save_path):
    """More rows than a batch / a COPY chunk, duplicates spread across them."""
    lines = ["phone,name"]
    for i in range(6000):
        lines.append(f"09{i % 5000:08d},Tên {i}")
    imp = run_import(("\n".join(lines) + "\n").encode())
    assert_adds_up(imp)
    assert (imp.total_rows, imp.imported_count, imp.duplicate_count) == (6000, 5000, 1000)
    assert Contact.objects.get(phone="84900000007").name == "Tên 7"  # the first one wins
    assert imp.contact_list.memberships.count() == 5000


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40))
@settings(max_examples=300, deadline=None)
def test_contact_search_text_equals_search_key(name):
    name = " ".join(name.split())
    assert contact_search_text(name) == search_key(name)


def test_import_status_fields(run_import):
    imp = run_import(FILE)
    assert imp.status == ContactImport.Status.COMPLETED
    assert imp.phase == ""
    assert imp.started_at and imp.finished_at
    assert imp.processed_rows == imp.total_rows == 2


@pytest.mark.skipif(
    settings_module.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="needs PostgreSQL (run with DATABASE_URL=postgres://...)",
)
@pytest.mark.django_db(transaction=True)
def test_parallel_save_on_postgresql(monkeypatch, contact_list):
    """Big files are saved by two connections (one per hash bucket of the phones); the result
    is the same as one connection's. Rows are committed here, so this test is transactional."""
    import io

    from django.db import connection

    monkeypatch.setattr(sinks, "PARALLEL_MIN_ROWS", 10)
    Contact.objects.create(phone="84900000003", name="", attributes={"city": ""})
    lines = ["phone,name,city"] + [f"09{i % 300:08d},Tên {i},Huế" for i in range(400)]
    imp = contact_import_prepare(
        file=io.BytesIO(("\n".join(lines) + "\n").encode()),
        filename="big.csv",
        contact_list=contact_list,
    )
    imp = contact_import_run(import_id=imp.pk)
    assert_adds_up(imp)
    assert (imp.imported_count, imp.updated_count, imp.duplicate_count) == (299, 1, 100)
    filled = Contact.objects.get(phone="84900000003")
    assert (filled.name, filled.attributes) == ("Tên 3", {"city": "Huế"})
    contact_list.refresh_from_db()
    assert contact_list.contact_count == 300
    from tests.contacts.conftest import report_rows

    _header, *rows = report_rows(imp)
    assert [int(r[0]) for r in rows] == list(range(302, 402))  # in row order, both parts
    assert "row 2;" in rows[0][2]  # row 302 repeats row 2's phone
    with connection.cursor() as cur:  # the shared staging table is gone
        cur.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'loa_import_stage_%%'")
        assert cur.fetchone()[0] == 0
