import os

import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import translation


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (run with DATABASE_URL=postgres://...)")


@pytest.fixture
def english():
    """Assertions read English text; the project's default language is Vietnamese. A folder's
    conftest makes it autouse for its tests."""
    with translation.override("en"):
        yield


@pytest.fixture
def clear_cache():
    """An empty cache before and after the test: lockout counters and throttles live there.
    A module uses it with pytestmark = pytest.mark.usefixtures("clear_cache")."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def admin_user(db):
    from django.contrib.auth.models import User

    return User.objects.create_superuser("root", "root@example.com", "pw-Loa-2026!")


@pytest.fixture
def marketer(client):
    """A user in the Marketer role, logged in on `client`."""
    from tests.factories import UserFactory

    user = UserFactory(username="mk", groups=["Marketer"])
    client.force_login(user)
    return user


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_database_url() -> str:
    """A DATABASE_URL for the test database, for processes started by a test (qcluster, gunicorn)."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def process_env(**extra) -> dict:
    """Environment for a child process of the project that must share this test's database."""
    import os

    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=test_database_url(),
        Q_SYNC="false",
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        LOA_SANDBOX_CALLBACK_DELAY="0.3",
        # The fake providers listen on http://127.0.0.1 (config/test_settings.py says the same).
        LOA_ALLOW_HTTP_PROVIDER_URLS="true",
        LOA_DRIVER_TIME_BUDGET="20",
        Q_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


class QCluster:
    """A real `manage.py qcluster` process against the test database."""

    def __init__(self, **env):
        import subprocess
        import sys
        from pathlib import Path

        from django.conf import settings

        self.log = Path(settings.BASE_DIR) / "tmp" / f"qcluster-{os.getpid()}-{id(self)}.log"
        self.log.parent.mkdir(exist_ok=True)
        self._fh = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=settings.BASE_DIR,
            env=process_env(**env),
            stdout=self._fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL the whole process group: the worst crash a worker can have."""
        import os
        import signal

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        import os
        import signal
        import subprocess

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._fh.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]


@pytest.fixture
def qcluster(transactional_db, monkeypatch):
    """Start real qcluster processes on demand: `c = qcluster()`; all are stopped at teardown.

    While a test uses real clusters, tasks it enqueues go to the broker (the test settings run
    them inline otherwise)."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)
    started = []

    def start(**env):
        c = QCluster(**env)
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()


def free_port() -> int:
    """A loopback TCP port nothing listens on, for a server a test starts."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(env: dict, log):
    """gunicorn as the web role runs it (config/gunicorn.conf.py, config.wsgi) in its own
    session, its output into the open file `log`. Stop it with os.killpg(proc.pid, SIGTERM)."""
    import subprocess
    import sys
    from pathlib import Path

    from django.conf import settings

    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "-c",
            "config/gunicorn.conf.py",
            "config.wsgi:application",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_for(predicate, timeout: float = 60, interval: float = 0.3):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()
