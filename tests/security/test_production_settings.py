"""The production profile, run for real in child processes: `check --deploy` is clean, no secret
has a default, static files are collected and served by whitenoise under gunicorn, and the
answers carry the security headers and a request id."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings

from tests.conftest import free_port, start_gunicorn

BASE = Path(settings.BASE_DIR)


def prod_env(tmp_path: Path, **extra) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST", "DJANGO_", "DATABASE_", "REDIS_", "LOG_", "SECURE_"))
    }
    env.update(
        DJANGO_ENV="production",
        DJANGO_SETTINGS_MODULE="config.settings",
        SECRET_KEY=secrets.token_urlsafe(60),  # 80 random characters
        ALLOWED_HOSTS="loa.example.com,127.0.0.1",
        PUBLIC_BASE_URL="https://loa.example.com",
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        DATABASE_URL=f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        STATIC_ROOT=str(tmp_path / "static"),
        MEDIA_ROOT=str(tmp_path / "media"),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}


def manage(*args, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_check_deploy_reports_nothing(tmp_path):
    r = manage("check", "--deploy", "--fail-level", "WARNING", env=prod_env(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "System check identified no issues (0 silenced)." in r.stdout


@pytest.mark.parametrize(
    "missing", ["SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "ALLOWED_HOSTS", "PUBLIC_BASE_URL"]
)
def test_production_refuses_to_start_without_a_secret(tmp_path, missing):
    env = prod_env(tmp_path)
    del env[missing]
    r = manage("check", env=env)
    assert r.returncode != 0
    assert f"Set the {missing} environment variable" in r.stderr


def test_development_keys_are_refused_in_production(tmp_path):
    from config.security import DEV_FIELD_KEY, DEV_SECRET_KEY

    env = prod_env(
        tmp_path,
        FIELD_ENCRYPTION_KEYS=DEV_FIELD_KEY,
        SECRET_KEY=DEV_SECRET_KEY,
        PUBLIC_BASE_URL="http://loa.example.com",
    )
    r = manage("check", "--deploy", env=env)
    assert r.returncode != 0
    assert "loa.E002" in r.stderr and "loa.E003" in r.stderr and "loa.W001" in r.stderr


def test_a_malformed_encryption_key_is_an_error_everywhere(tmp_path):
    env = prod_env(tmp_path, DJANGO_ENV="development", FIELD_ENCRYPTION_KEYS="not-a-key")
    r = manage("check", env=env)
    assert r.returncode != 0
    assert "loa.E001" in r.stderr


def test_production_settings_values(tmp_path):
    code = (
        "from django.conf import settings as s; import json; print(json.dumps({k: getattr(s, k) "
        "for k in ['DEBUG','SESSION_COOKIE_SECURE','CSRF_COOKIE_SECURE','SECURE_HSTS_SECONDS',"
        "'SECURE_SSL_REDIRECT','SECURE_CONTENT_TYPE_NOSNIFF','X_FRAME_OPTIONS',"
        "'SESSION_COOKIE_HTTPONLY','ALLOWED_HOSTS','CSRF_TRUSTED_ORIGINS','LOG_FORMAT',"
        "'TRUSTED_PROXY_COUNT']} | {'STATIC': s.STORAGES['staticfiles']['BACKEND'], "
        "'PROXY': list(s.SECURE_PROXY_SSL_HEADER)}))"
    )
    env = prod_env(tmp_path, CSRF_TRUSTED_ORIGINS="https://loa.example.com")
    r = manage("shell", "-c", code, env=env)
    assert r.returncode == 0, r.stderr
    values = json.loads(r.stdout.strip().splitlines()[-1])
    assert values == {
        "DEBUG": False,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "X_FRAME_OPTIONS": "DENY",
        "SESSION_COOKIE_HTTPONLY": True,
        "ALLOWED_HOSTS": ["loa.example.com", "127.0.0.1"],
        "CSRF_TRUSTED_ORIGINS": ["https://loa.example.com"],
        "LOG_FORMAT": "json",
        "TRUSTED_PROXY_COUNT": 1,
        "STATIC": "whitenoise.storage.CompressedManifestStaticFilesStorage",
        "PROXY": ["HTTP_X_FORWARDED_PROTO", "https"],
    }


def _get(url: str, headers: dict | None = None):
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_gunicorn_serves_static_with_security_headers_and_json_access_log(tmp_path):
    env = prod_env(tmp_path)
    r = manage("collectstatic", "--noinput", env=env)
    assert r.returncode == 0, r.stderr
    manifest = json.loads((tmp_path / "static" / "staticfiles.json").read_text())
    hashed_css = manifest["paths"]["admin/css/base.css"]

    port = free_port()
    env.update(PORT=str(port), WEB_CONCURRENCY="1", GUNICORN_THREADS="2")
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        proc = start_gunicorn(env, log)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                status, _h, _b = _get(base + "/healthz")
                if status == 200:
                    break
            except OSError:
                time.sleep(0.3)
        https = {"X-Forwarded-Proto": "https", "Host": "loa.example.com"}

        status, headers, body = _get(base + "/healthz", {**https, "X-Request-ID": "probe-42"})
        assert status == 200 and json.loads(body) == {"status": "ok"}
        assert headers["X-Request-ID"] == "probe-42"
        assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "same-origin"

        # whitenoise serves the hashed file with a far-future cache header
        status, headers, body = _get(f"{base}/static/{hashed_css}", https)
        assert status == 200 and len(body) > 1000
        assert "max-age=315360000" in headers.get("Cache-Control", "")

        # plain HTTP is redirected to HTTPS (except the health endpoints)
        status, headers, _b = _get(base + "/admin/login/", {"Host": "loa.example.com"})
        assert status == 301
        assert headers["Location"] == "https://loa.example.com/admin/login/"

        status, headers, body = _get(base + "/admin/login/", https)
        assert status == 200
        cookie = headers.get("Set-Cookie", "")
        assert "csrftoken=" in cookie and "Secure" in cookie

        # an unknown host is refused, not served
        status, _h, _b = _get(base + "/healthz", {**https, "Host": "evil.example.net"})
        assert status == 400
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)

    lines = [ln for ln in log_path.read_text().splitlines() if ln.strip()]
    records = [json.loads(ln) for ln in lines]  # every line is one JSON object
    access = [r for r in records if r["logger"] == "gunicorn.access"]
    probe = [r for r in access if r["request_id"] == "probe-42"]
    assert probe and probe[0]["path"] == "/healthz" and probe[0]["status"] == 200
    assert all(len(r["request_id"]) >= 8 for r in access)


def test_gunicorn_config_loads():
    r = subprocess.run(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "--check-config",
            "-c",
            "config/gunicorn.conf.py",
            "config.wsgi:application",
        ],
        cwd=BASE,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_development_webhook_urls_follow_the_port_the_server_listens_on(tmp_path):
    """`PORT=8110 make run` serves 8110: the webhook URL the admin shows must say 8110, not
    8000 (issue 17). loa_serve passes its --port to its children as PORT."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_ENV", "PUBLIC_"))}
    env.update(PORT="8110", DATABASE_URL=f"sqlite:///{tmp_path / 'dev.sqlite3'}")
    r = manage(
        "shell", "-c", "from django.conf import settings; print(settings.PUBLIC_BASE_URL)", env=env
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "http://127.0.0.1:8110"
