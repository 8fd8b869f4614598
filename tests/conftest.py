import pytest
from django.db import connection


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (run with DATABASE_URL=postgres://...)")


@pytest.fixture
def admin_user(db):
    from django.contrib.auth.models import User

    return User.objects.create_superuser("root", "root@example.com", "pw-Loa-2026!")


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client
