"""The house's arrows are enforced by import-linter (pyproject.toml, [tool.importlinter]); these
tests prove the check runs on the real tree and fails on a wrong import, so a green `lint-imports`
in CI means something."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ROOMS = ("config", "providers", "templates_app", "campaigns", "webhooks")
LINT = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed")


def _copy_tree(dest: Path) -> None:
    """The rooms' Python files and pyproject.toml, nothing else (fast, and never the real tree)."""
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    for room in ROOMS:
        for src in (ROOT / room).rglob("*.py"):
            target = dest / src.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, target)


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_the_tree_keeps_every_contract():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        # an upward import hidden in a function body is still an upward import
        ("providers/base.py", "def _sneak():\n    import campaigns.models\n", "Rooms point down"),
        ("templates_app/models.py", "import campaigns.models\n", "Rooms point down"),
        ("campaigns/models.py", "import webhooks.models\n", "Rooms point down"),
        ("config/settings.py", "import providers.models\n", "config knows no app"),
        ("campaigns/bulk.py", "import config.urls\n", "No app imports the project"),
        ("providers/base.py", "import providers.esms\n", "No cycles inside a room"),
    ],
)
def test_a_wrong_import_breaks_the_check(tmp_path, module, line, contract):
    _copy_tree(tmp_path)
    path = tmp_path / module
    path.write_text(path.read_text() + "\n\n" + line)
    result = _lint(tmp_path)
    assert result.returncode != 0
    broken = [ln for ln in result.stdout.splitlines() if "BROKEN" in ln]
    assert any(contract in ln for ln in broken), result.stdout
