"""manage.py import_contacts: the same service as the admin; prints the counts."""

import io

import pytest
from django.core.management import CommandError, call_command

from campaigns.models import Contact, ContactImport, ContactList
from tests.contacts import hostile

pytestmark = pytest.mark.django_db


def run(*args):
    out = io.StringIO()
    call_command("import_contacts", *args, stdout=out)
    return out.getvalue()


def test_command_prints_the_counts(tmp_path):
    path = tmp_path / "khach.csv"
    path.write_bytes(hostile.duplicates())
    out = run(str(path), "--list", "Khách VIP", "--merge", "overwrite")
    assert "UTF-8, delimiter comma (,)" in out
    assert "total=4 imported=2 updated=0 duplicate=2 invalid=0" in out
    assert "error report:" in out
    imp = ContactImport.objects.get()
    assert imp.merge_policy == "overwrite"
    assert ContactList.objects.get(name="Khách VIP").contact_count == 2


def test_command_column_options(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"a,b,c\n0987654321,An,x\n")
    out = run(
        str(path),
        "--list",
        "L",
        "--phone-column",
        "1",
        "--name-column",
        "b",
        "--ignore-column",
        "c",
    )
    assert "imported=1" in out
    c = Contact.objects.get()
    assert (c.phone, c.name, c.attributes) == ("84987654321", "An", {})


def test_command_refusals(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(CommandError, match="empty"):
        run(str(empty), "--list", "L")
    nophone = tmp_path / "nophone.csv"
    nophone.write_bytes(hostile.no_phone_column())
    with pytest.raises(CommandError, match="No phone column"):
        run(str(nophone), "--list", "L")
    with pytest.raises(CommandError, match="No such file"):
        run(str(tmp_path / "missing.csv"), "--list", "L")
    with pytest.raises(CommandError, match="No column"):
        run(str(nophone), "--list", "L", "--phone-column", "telefon")
