"""Shared helpers for the templates tests: a fake provider answer for list_templates."""

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from providers.sandbox.adapter import SandboxProvider

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "templates"


def load_fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@dataclass
class FakeList:
    """answers[oa_id] is a list of contract dicts, or an exception to raise."""

    answers: dict = field(default_factory=dict)
    calls: list = field(default_factory=list)


@pytest.fixture
def fake_templates(monkeypatch) -> FakeList:
    """Make the sandbox provider list templates the way a real provider module would."""
    fake = FakeList()

    def list_templates(self, *, oa_id: str = ""):
        fake.calls.append(oa_id)
        answer = fake.answers.get(oa_id, [])
        if isinstance(answer, Exception):
            raise answer
        return json.loads(json.dumps(answer))  # a fresh copy, as a real call would give

    monkeypatch.setattr(SandboxProvider, "list_templates", list_templates)
    return fake


@pytest.fixture(autouse=True)
def _english(english):
    """Messages are asserted in English (the english fixture of tests/conftest.py)."""


@pytest.fixture
def client(client):
    """Admin pages in English too (LocaleMiddleware reads Accept-Language)."""
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client
