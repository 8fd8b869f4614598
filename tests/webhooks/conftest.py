import pytest
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from config.wsgi import application


@pytest.fixture
def fast_path_fresh(monkeypatch):
    """For tests that call the WSGI fast path directly: as Django's test client does, the handler
    must not close the test's connection at the end of a request it hands to Django; and each test
    gets its own account lookups (the fast path keeps them for a few seconds) and an empty cache."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    cache.clear()
    monkeypatch.setattr(application, "_accounts", {})
    yield
    cache.clear()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
