"""Real-browser tests: Playwright's sync API driving Debian's Chromium (no browser download).

Skipped, with the reason, where chromium or playwright is missing. Playwright's sync API runs an
event loop in this thread; Django's ORM refuses sync calls while a loop runs unless told it is
safe, which it is here (the loop only drives the browser)."""

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--headless",
]
PASSWORD = "pw-Loa-2026!"


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[dev]'")
    if not CHROMIUM:
        pytest.skip("chromium is not installed: apt-get install chromium (CI's .ci/run does it)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def _new_page(browser, live_server, locale: str):
    context = browser.new_context(
        base_url=live_server.url,
        locale=locale,  # sent as Accept-Language: Django's LocaleMiddleware picks the language
        timezone_id="Asia/Ho_Chi_Minh",
        viewport={"width": 1280, "height": 900},
        accept_downloads=True,
    )
    p = context.new_page()
    p.set_default_timeout(20_000)
    return context, p


@pytest.fixture
def page(browser, live_server):
    """A page whose browser asks for English (assertions on English texts stay stable)."""
    context, p = _new_page(browser, live_server, "en-US")
    yield p
    context.close()


@pytest.fixture
def page_vi(browser, live_server):
    """A page whose browser asks for Vietnamese, as most of Loa's users' browsers do."""
    context, p = _new_page(browser, live_server, "vi-VN")
    yield p
    context.close()


def ensure_roles() -> None:
    """The role groups come from a data migration; a transactional test before this one may have
    flushed them. Recreate them from the migration's own table (same permissions)."""
    import importlib

    from django.contrib.auth.models import Group, Permission

    roles = importlib.import_module("campaigns.migrations.0002_roles_and_schedules").ROLES
    later = {}
    for name in ("0007_segment_permissions", "0017_marketer_optout"):
        for role, codenames in importlib.import_module(
            f"campaigns.migrations.{name}"
        ).GRANTS.items():
            later.setdefault(role, []).extend(codenames)
    for role, perms in roles.items():
        group, created = Group.objects.get_or_create(name=role)
        if not created and group.permissions.exists():
            continue
        chosen = []
        for perm in perms:
            app_label, codename = perm.split(".")
            qs = Permission.objects.filter(content_type__app_label=app_label)
            if codename != "*":
                qs = qs.filter(codename=codename)
            chosen += list(qs)
        chosen += Permission.objects.filter(
            content_type__app_label="campaigns", codename__in=later.get(role, [])
        )
        group.permissions.set(chosen)


def login(page, username: str, password: str = PASSWORD) -> None:
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")


def logout(page) -> None:
    page.goto("/admin/")
    page.click("#logout-form button")
    page.wait_for_load_state()


def shot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
