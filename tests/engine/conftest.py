import pytest
from django.utils import translation


@pytest.fixture(autouse=True)
def english():
    """Assertions below read English reasons; the product's default language is Vietnamese."""
    with translation.override("en"):
        yield
