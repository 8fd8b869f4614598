"""Login lockout, the fail-open cache counters it shares with the webhook throttle, and Loa's
own system checks.

The counters (here and in webhooks/guard.py) live in Django's cache (settings.CACHES): a database
table shared by every process on the machine by default, Redis when REDIS_URL is set, so every
web worker sees the same counts. If the cache itself fails, logins and webhooks go on (fail open)
and the error is logged: the lockout is a second line of defence behind strong passwords, never a
reason to lock everyone out.

Lockout: LOGIN_LOCKOUT_FAILURES failed logins for one username from one address within
LOGIN_LOCKOUT_WINDOW seconds lock that pair for LOGIN_LOCKOUT_SECONDS; LOGIN_LOCKOUT_IP_FAILURES
failures from one address (any usernames) lock the address. Enforced twice: the admin login form
says so in words, and `LockoutModelBackend` refuses any other login path while locked.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core import checks
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

logger = logging.getLogger("loa.security")

DEV_FIELD_KEY = "ZGV2LW9ubHktbG9hLWZpZWxkLWtleS0wMDAwMDAwMDA="
DEV_SECRET_KEY = "dev-insecure-loa-key-change-me-for-anything-public"

T = TypeVar("T")


def _conf(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def _norm_username(username: str | None) -> str:
    return (username or "").strip().lower()[:150]


# ---- fail-open cache counters (also used by webhooks/guard.py) ---------------------------------


def key_hash(*parts: str) -> str:
    """A cache key part for these values. Hashed: cache keys stay short and safe for every
    backend, and no username or address is stored."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def cache_call(fn: Callable[[], T], default: T) -> T:
    """fn(), or `default` (logged) when the cache fails: see the module docstring."""
    try:
        return fn()
    except Exception:  # fail open
        logger.exception("security cache unavailable; login lockout/throttle not enforced")
        return default


def cache_incr(key: str, window: int) -> int:
    """Count one more within a window of `window` seconds started by the first count."""
    # add() starts the window at the first failure; incr() counts within it.
    cache.add(key, 0, window)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, window)
        return 1


# ---- login lockout -----------------------------------------------------------------------------


def _lock_keys(username: str, ip: str) -> tuple[str, str]:
    return (
        f"loa:login:lock:u:{key_hash(_norm_username(username), ip)}",
        f"loa:login:lock:ip:{key_hash(ip)}",
    )


def login_locked_for(*, username: str | None, ip: str) -> int:
    """Seconds until this username may try again from this address (0 = not locked)."""
    keys = _lock_keys(username or "", ip)
    values = cache_call(lambda: cache.get_many(list(keys)), {})
    until = max([float(v) for v in values.values() if v] or [0.0])
    return max(0, int(until - time.time() + 0.999))


def login_note_failure(*, username: str | None, ip: str) -> int:
    """Count one failed login; lock the pair (or the address) when a limit is reached.
    Returns the lock's seconds if this failure locked something, else 0."""
    if login_locked_for(username=username, ip=ip):
        return 0  # attempts while locked neither count nor extend the lock
    window = _conf("LOGIN_LOCKOUT_WINDOW", 900)
    duration = _conf("LOGIN_LOCKOUT_SECONDS", 900)
    user_lock, ip_lock = _lock_keys(username or "", ip)
    locked = 0
    for fail_key, lock_key, limit in (
        (f"loa:login:fail:u:{key_hash(_norm_username(username), ip)}", user_lock, "USER"),
        (f"loa:login:fail:ip:{key_hash(ip)}", ip_lock, "IP"),
    ):
        maximum = _conf(
            "LOGIN_LOCKOUT_FAILURES" if limit == "USER" else "LOGIN_LOCKOUT_IP_FAILURES",
            5 if limit == "USER" else 50,
        )
        if maximum <= 0:
            continue
        count = cache_call(lambda k=fail_key: cache_incr(k, window), 0)
        if count >= maximum:
            until = time.time() + duration
            cache_call(lambda k=lock_key, u=until: cache.set(k, u, duration), None)
            cache_call(lambda k=fail_key: cache.delete(k), None)
            locked = duration
            logger.warning(
                "login locked for %s s after %s failures (%s)",
                duration,
                count,
                "username+address" if limit == "USER" else "address",
                extra={"client_ip": ip},
            )
    return locked


def login_note_success(*, username: str | None, ip: str) -> None:
    key = f"loa:login:fail:u:{key_hash(_norm_username(username), ip)}"
    cache_call(lambda: cache.delete(key), None)


def locked_message(seconds: int) -> str:
    minutes = max(1, (seconds + 59) // 60)
    return ngettext(
        "Too many failed sign-in attempts. Sign-in for this account from your address is "
        "locked for %(minutes)d more minute. Try again later or ask an administrator.",
        "Too many failed sign-in attempts. Sign-in for this account from your address is "
        "locked for %(minutes)d more minutes. Try again later or ask an administrator.",
        minutes,
    ) % {"minutes": minutes}


def _request_ip(request) -> str:
    return (request.META.get("REMOTE_ADDR", "") if request is not None else "") or "-"


class LockoutAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin login form, refusing locked username+address pairs with a clear message."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "locked": _("Too many failed sign-in attempts."),
    }

    def clean(self):
        username = self.cleaned_data.get("username")
        ip = _request_ip(self.request)
        wait = login_locked_for(username=username, ip=ip)
        if wait:
            raise ValidationError(locked_message(wait), code="locked")
        try:
            return super().clean()
        except ValidationError as exc:
            # This failure may be the one that locked the pair: say so now, not next time.
            wait = login_locked_for(username=username, ip=ip)
            if wait:
                raise ValidationError(locked_message(wait), code="locked") from exc
            raise


class LockoutModelBackend(ModelBackend):
    """Django's ModelBackend that refuses every login path while the pair is locked. Raising
    PermissionDenied stops django.contrib.auth.authenticate() (which then sends
    user_login_failed). Being a ModelBackend, it also serves sessions and permissions."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if login_locked_for(username=username, ip=_request_ip(request)):
            raise PermissionDenied(_("Too many failed sign-in attempts."))
        return super().authenticate(request, username=username, password=password, **kwargs)


def on_login_failed(sender, credentials, request=None, **kwargs):
    username = credentials.get(get_user_model().USERNAME_FIELD) or credentials.get("username")
    login_note_failure(username=username, ip=_request_ip(request))


def on_logged_in(sender, request, user, **kwargs):
    login_note_success(username=user.get_username(), ip=_request_ip(request))


# ---- cache table -------------------------------------------------------------------------------

_cache_tables_done: set[str] = set()


def ensure_cache_table(sender=None, using="default", **kwargs) -> None:
    """post_migrate: create the DatabaseCache table, so `migrate` alone leaves a working
    install (the Makefile's `createcachetable` line does the same explicitly)."""
    if using in _cache_tables_done:
        return
    _cache_tables_done.add(using)
    call_command("createcachetable", database=using, verbosity=0)


# ---- system checks -----------------------------------------------------------------------------


@checks.register(checks.Tags.security, deploy=True)
def check_production_secrets(app_configs=None, **kwargs):
    errors = []
    if DEV_FIELD_KEY in settings.FIELD_ENCRYPTION_KEYS:
        errors.append(
            checks.Error(
                "FIELD_ENCRYPTION_KEYS contains the public development key.",
                hint="Generate a key (see docs/OPERATIONS.md) and rotate with `rotate_secrets`.",
                id="loa.E002",
            )
        )
    if not settings.PUBLIC_BASE_URL.startswith("https://"):
        errors.append(
            checks.Warning(
                "PUBLIC_BASE_URL is not an https:// address: provider callbacks (and the webhook "
                "tokens in their URLs) would travel in clear text.",
                id="loa.W001",
            )
        )
    if settings.SECRET_KEY == DEV_SECRET_KEY:
        errors.append(
            checks.Error(
                "SECRET_KEY is the public development key.",
                hint="Set SECRET_KEY to 50+ random characters.",
                id="loa.E003",
            )
        )
    return errors


@checks.register()
def check_queue_timeouts(app_configs=None, **kwargs):
    q = settings.Q_CLUSTER
    if q.get("timeout") and q.get("retry") and q["timeout"] >= q["retry"]:
        return [
            checks.Error(
                "Q_TIMEOUT must be lower than Q_RETRY: the broker would start a running task "
                "a second time.",
                id="loa.E004",
            )
        ]
    return []
