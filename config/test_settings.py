"""Test settings: the real settings with tasks run inline and fast password hashing.

End-to-end tests start real qcluster processes with the normal settings pointed at the test
database (see tests/e2e/), so SQLite's test database is a file, not memory.
"""

from config.settings import *  # noqa: F403
from config.settings import BASE_DIR, DATABASES, LOA, Q_CLUSTER

Q_CLUSTER = {**Q_CLUSTER, "sync": True}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOA = {**LOA, "SANDBOX_CALLBACK_DELAY": 0.0, "SEND_CONCURRENCY": 4}
# The fake providers of the tests listen on http://127.0.0.1 (tests/security/test_provider_urls.py
# turns it off to check the https rule).
LOA_ALLOW_HTTP_PROVIDER_URLS = True
# tmp/ is not in git: a fresh clone must get it before the test database file is created there.
(BASE_DIR / "tmp").mkdir(exist_ok=True)
# One media folder per database vendor: CI runs the SQLite and PostgreSQL suites side by side.
MEDIA_ROOT = BASE_DIR / "tmp" / f"test-media-{DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}"
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # One file per test run (parallel runs must not share it); e2e tests read the name back.
    import os

    DATABASES["default"]["TEST"] = {
        "NAME": str(BASE_DIR / "tmp" / f"test_loa_{os.getpid()}.sqlite3")
    }
