"""Schemathesis against the served OpenAPI schema (/api/v1/openapi.json, loaded from the WSGI
app): every operation, generated valid and invalid inputs, with a key of every scope. No answer
may be a 500, and every answer must match the schema (status code documented, body valid).
Bounded to a few examples per operation so the run stays well under a minute."""

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from tests.api.conftest import make_key

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


# Loaded when the module is collected: the schema view touches no database.
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)


@pytest.fixture
def keep_connection():
    """As Django's test client does: the WSGI call must not close the test's connection (its
    transaction holds the fixtures)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
@pytest.mark.django_db
def test_the_api_keeps_its_schema(case, keep_connection, app, template):
    _key, raw = make_key(app)
    case.call_and_validate(
        headers={"Authorization": f"Bearer {raw}", "Accept-Language": "en"},
        checks=CHECKS,
    )
