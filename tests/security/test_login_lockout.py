"""Login lockout: 5 failures for one username from one address in 15 minutes lock that pair for
15 minutes, with a clear message; other addresses and other users are not affected."""

from __future__ import annotations

import time
from unittest import mock

import pytest
from django.contrib.auth import authenticate
from django.test import Client, override_settings
from django.urls import reverse

from tests.factories import UserFactory

PASSWORD = "pw-Loa-2026!"
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clear_cache")]


@pytest.fixture
def staff():
    return UserFactory(username="marketer1", is_staff=True, is_superuser=True)


def login(ip: str, username: str, password: str, client: Client | None = None):
    c = client or Client(REMOTE_ADDR=ip)
    return c.post(
        reverse("admin:login"),
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=ip,
        HTTP_ACCEPT_LANGUAGE="en",  # the messages below are the English msgids
    )


def is_logged_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == "/admin/"


def test_five_failures_lock_the_pair_even_for_the_right_password(staff):
    for i in range(4):
        r = login("10.0.0.1", "marketer1", f"wrong-{i}")
        assert r.status_code == 200
        assert "Too many failed sign-in attempts" not in r.content.decode()
    r = login("10.0.0.1", "marketer1", "wrong-4")
    # the failure that locks says so at once
    assert "Too many failed sign-in attempts" in r.content.decode()
    assert "15 more minutes" in r.content.decode()
    r = login("10.0.0.1", "marketer1", PASSWORD)
    assert not is_logged_in(r)
    assert "Too many failed sign-in attempts" in r.content.decode()
    # the same user from another address, and another user from this address, still get in
    assert is_logged_in(login("10.0.0.2", "marketer1", PASSWORD))
    UserFactory(username="other", is_staff=True, is_superuser=True)
    assert is_logged_in(login("10.0.0.1", "other", PASSWORD))


def test_username_case_and_spaces_do_not_dodge_the_lock(staff):
    for name in ("marketer1", "MARKETER1", " Marketer1", "marketer1 ", "mArketer1"):
        login("10.0.0.3", name, "wrong")
    assert not is_logged_in(login("10.0.0.3", "marketer1", PASSWORD))


def test_the_lock_expires(staff):
    for _ in range(5):
        login("10.0.0.4", "marketer1", "wrong")
    assert not is_logged_in(login("10.0.0.4", "marketer1", PASSWORD))
    later = time.time() + 15 * 60 + 1
    with mock.patch("config.security.time.time", return_value=later):
        assert is_logged_in(login("10.0.0.4", "marketer1", PASSWORD))


def test_a_success_resets_the_count(staff):
    for _ in range(4):
        login("10.0.0.5", "marketer1", "wrong")
    assert is_logged_in(login("10.0.0.5", "marketer1", PASSWORD))
    for _ in range(4):
        login("10.0.0.5", "marketer1", "wrong")
    assert is_logged_in(login("10.0.0.5", "marketer1", PASSWORD))


@override_settings(LOGIN_LOCKOUT_IP_FAILURES=8)
def test_many_usernames_from_one_address_lock_the_address(staff):
    for i in range(8):
        login("10.0.0.6", f"guess{i}", "wrong")
    r = login("10.0.0.6", "marketer1", PASSWORD)
    assert not is_logged_in(r)
    assert "Too many failed sign-in attempts" in r.content.decode()
    assert is_logged_in(login("10.0.0.7", "marketer1", PASSWORD))


def test_every_login_path_honours_the_lock(staff, rf):
    """Not only the admin form: django.contrib.auth.authenticate() itself refuses (the backend)."""
    request = rf.post("/", REMOTE_ADDR="10.0.0.8")
    for _ in range(5):
        assert authenticate(request, username="marketer1", password="wrong") is None
    assert authenticate(request, username="marketer1", password=PASSWORD) is None
    other = rf.post("/", REMOTE_ADDR="10.0.0.9")
    assert authenticate(other, username="marketer1", password=PASSWORD) == staff


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_behind_a_proxy_the_client_address_counts_not_the_proxy(staff):
    """With nginx in front, REMOTE_ADDR is nginx: the lock must follow X-Forwarded-For's
    proxy-added entry, and a client-forged entry on the left must not dodge it."""
    c = Client()
    for i in range(5):
        c.post(
            reverse("admin:login"),
            {"username": "marketer1", "password": "wrong"},
            REMOTE_ADDR="127.0.0.1",
            HTTP_X_FORWARDED_FOR=f"6.6.6.{i}, 203.0.113.5",
            HTTP_ACCEPT_LANGUAGE="en",
        )
    locked = c.post(
        reverse("admin:login"),
        {"username": "marketer1", "password": PASSWORD, "next": "/admin/"},
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR="203.0.113.5",
    )
    assert not is_logged_in(locked)
    elsewhere = c.post(
        reverse("admin:login"),
        {"username": "marketer1", "password": PASSWORD, "next": "/admin/"},
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR="198.51.100.7",
    )
    assert is_logged_in(elsewhere)


def test_a_broken_cache_fails_open(staff):
    """The lockout is defence in depth: if the cache is down, people can still sign in."""
    with (
        mock.patch("config.security.cache.get_many", side_effect=RuntimeError("down")),
        mock.patch("config.security.cache.add", side_effect=RuntimeError("down")),
    ):
        assert is_logged_in(login("10.0.0.10", "marketer1", PASSWORD))


def test_the_cache_is_shared_by_processes():
    """The counters live where every web process sees them: the database cache table (or
    Redis), never a per-process memory cache."""
    from django.conf import settings

    backend = settings.CACHES["default"]["BACKEND"]
    assert backend in (
        "django.core.cache.backends.db.DatabaseCache",
        "django.core.cache.backends.redis.RedisCache",
    )
