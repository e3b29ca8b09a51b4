"""The project as it ships: a wheel with its assets and migrations, runnable outside the checkout;
the README's scripts; the benchmark script at a tiny size (so it cannot rot)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_wheel_carries_assets_and_migrations_and_runs_from_anywhere(tmp_path: Path) -> None:
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("crm_tui-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "crm_tui/assets/demo/demo.toml",
        "crm_tui/assets/styles/app.tcss",
        "crm_tui/core/migrations/env.py",
        "crm_tui/core/migrations/script.py.mako",
        "crm_tui/core/migrations/versions/0001_initial_schema.py",
    ):
        assert required in names, required
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "crm-tui = crm_tui.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()

    target = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    env = {**os.environ, "PYTHONPATH": str(target), "CRM_TUI_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import crm_tui, sys; sys.argv[0] = 'crm-tui'; print(crm_tui.__file__, file=sys.stderr); "
            "from crm_tui.cli.main import main; sys.exit(main(['--demo', '--now', '2026-11-22T09:00:00+01:00', 'contacts', 'list', '--limit', '2', '--json']))",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert str(target) in result.stderr, "the installed wheel was used, not the checkout"
    assert len(json.loads(result.stdout)) == 2


@pytest.mark.slow
def test_the_readme_run_script_starts_crm_tui(tmp_path: Path) -> None:
    env = {**os.environ, "CRM_TUI_VENV": sys.prefix, "CRM_TUI_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [str(ROOT / "scripts" / "run"), "--version"], capture_output=True, text=True, timeout=600, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("crm-tui ")


def test_the_readme_names_the_commands_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./scripts/run --demo" in readme
    assert "./scripts/test" in readme
    assert ci.strip().splitlines()[-1] == "./scripts/test", "CI runs exactly the README's test command"


@pytest.mark.slow
def test_the_benchmark_script_runs_at_a_tiny_size() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "search_scale.py"), "--tiny"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("seeded ")
    searches = [line for line in lines if line.startswith("contact search first page")]
    assert len(searches) == 7


@pytest.mark.slow
def test_the_app_benchmark_runs_at_a_tiny_size() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "app_scale.py"), "--tiny"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    for label in ("launch to first page", "open calendar", "search keystroke", "memory after launch"):
        assert label in result.stdout, label
