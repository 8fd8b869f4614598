import csv
import io

import pytest

from campaigns.contacts.importing.files import ImportFileError
from campaigns.contacts.importing.run import contact_import_prepare, contact_import_run
from campaigns.contacts.importing.sinks import PostgresSink
from campaigns.models import ContactImport, ContactList


def simulate_a_concurrent_writer(monkeypatch) -> None:
    """The import's fast statement fails as if a phone had appeared meanwhile: PostgreSQL saves
    with INSERT ... ON CONFLICT instead (both paths must give the same result)."""
    monkeypatch.setattr(
        PostgresSink,
        "_fast_sql",
        classmethod(
            lambda cls, policy: (
                "DO $$BEGIN RAISE unique_violation USING MESSAGE ="
                " 'simulated: a phone appeared meanwhile'; END$$"
            )
        ),
    )


@pytest.fixture(autouse=True)
def _english(english):
    """Messages are asserted in English (the english fixture of tests/conftest.py)."""


@pytest.fixture
def contact_list(db):
    return ContactList.objects.create(name="Khách hàng")


@pytest.fixture
def run_import(contact_list):
    """Upload bytes like the admin does (prepare: detect + guess the mapping), then run."""

    def _run(content: bytes, name: str = "contacts.csv", *, merge=None, target=None, mapping=None):
        kwargs = {"merge_policy": merge} if merge else {}
        imp = contact_import_prepare(
            file=io.BytesIO(content),
            filename=name,
            contact_list=target or contact_list,
            **kwargs,
        )
        if mapping is not None:
            ContactImport.objects.filter(pk=imp.pk).update(mapping=mapping)
        return contact_import_run(import_id=imp.pk)

    return _run


@pytest.fixture
def refuse():
    """The reason a file is refused as a whole, at upload time."""

    def _refuse(content: bytes, name: str = "contacts.csv") -> str:
        lst, _created = ContactList.objects.get_or_create(name="refused")
        with pytest.raises(ImportFileError) as exc:
            contact_import_prepare(file=io.BytesIO(content), filename=name, contact_list=lst)
        return str(exc.value)

    return _refuse


def report_rows(imp: ContactImport) -> list[list[str]]:
    """The error report as rows (header first); it starts with a BOM for Excel."""
    with imp.error_report.open("rb") as fh:
        data = fh.read()
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def assert_adds_up(imp: ContactImport) -> None:
    assert imp.status == ContactImport.Status.COMPLETED, imp.error_message
    assert imp.total_rows == (
        imp.imported_count + imp.updated_count + imp.duplicate_count + imp.invalid_count
    )
