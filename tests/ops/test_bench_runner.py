"""bench/run_all.py: the FIGURE convention is parsed, quick sizes are chosen from each script's
--help, crashes are reported, and one table comes out."""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def run_all():
    path = Path(__file__).resolve().parents[2] / "bench" / "run_all.py"
    spec = importlib.util.spec_from_file_location("loa_bench_run_all", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_parse_figures(run_all):
    out = textwrap.dedent(
        """\
        warming up...
        FIGURE import_rows_per_s=41234.5 rows/s target=>=10000 ok=yes size=200000
        FIGURE peak_rss_mb=312 MB target=<=300 ok=no
        FIGURE note_only=7
        FIGURE ratio=0.5 - target=- ok=-
          FIGURE indented=1 ms target=<2 ok=yes
        not a FIGURE line=3
        FIGURE broken value
        """
    )
    figs = run_all.parse_figures(out, "import_contacts")
    assert [(f.name, f.value, f.unit, f.target, f.ok) for f in figs] == [
        ("import_rows_per_s", 41234.5, "rows/s", ">=10000", "yes"),
        ("peak_rss_mb", 312, "MB", "<=300", "no"),
        ("note_only", 7, "-", "-", "-"),
        ("ratio", 0.5, "-", "-", "-"),
        ("indented", 1, "ms", "<2", "yes"),
    ]
    assert figs[0].extra == {"size": "200000"}


def test_quick_size_comes_from_the_scripts_help(run_all):
    assert run_all.size_args("x", "usage: x [--quick] [--rows N]", full=False) == ["--quick"]
    assert run_all.size_args("import_contacts", "  --rows ROWS  rows", full=False) == [
        "--rows",
        "20000",
    ]
    assert run_all.size_args("import_contacts", "usage: no size flags", full=False) == []
    assert run_all.size_args("x", "--quick", full=True) == []


def test_a_whole_run_prints_one_table(run_all, tmp_path, monkeypatch, capsys):
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "import_contacts.py").write_text(
        textwrap.dedent(
            """\
            import argparse, os
            p = argparse.ArgumentParser(); p.add_argument("--quick", action="store_true")
            a = p.parse_args()
            print("FIGURE rows_per_s=%d rows/s target=>=1000 ok=yes size=%d"
                  % (5000 if a.quick else 1, 100 if a.quick else 0))
            print("FIGURE db=%s - target=- ok=-" % os.environ["DATABASE_URL"].split(":")[0])
            """
        )
    )
    (bench / "webhooks.py").write_text("raise SystemExit('boom: no server')\n")
    (bench / "extra_thing.py").write_text("print('FIGURE x=2 ms target=<=1 ok=no')\n")
    (bench / "fake_provider.py").write_text("raise SystemExit('never run')\n")
    (bench / "_helpers.py").write_text("raise SystemExit('never run')\n")
    monkeypatch.setattr(run_all, "BENCH_DIR", bench)
    monkeypatch.setattr(run_all, "ROOT", tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)

    code = run_all.main(["--markdown"])
    out = capsys.readouterr().out
    assert code == 1  # webhooks crashed
    assert "rows_per_s" in out and "5,000" in out and "rows/s" in out and ">=1000" in out
    assert "CRASHED" in out and "boom: no server" in out
    assert "(not written yet)" in out  # validate_audience, send_campaign, admin_pages
    assert "extra_thing" in out and "never run" not in out
    assert "| benchmark | figure | value |" in out
    assert "3 figures, 1 below target, 1 benchmark(s) crashed" in out
    latest = json.loads((tmp_path / "tmp" / "bench" / "latest.json").read_text())
    first = latest["runs"][0]
    assert first["args"] == ["--quick"] and first["figures"][1]["value"] == "sqlite"
    assert (tmp_path / "tmp" / "bench" / "webhooks.log").read_text().strip() == "boom: no server"
