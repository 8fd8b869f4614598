import pytest


@pytest.fixture(autouse=True)
def _english(english):
    """Assertions below read English reasons (the english fixture of tests/conftest.py)."""
