from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from crm_tui.cli import main

DEMO_NOW = "2026-11-22T09:00:00+01:00"


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo home built once per test process (the demo takes a couple of seconds to make)."""
    home = tmp_path_factory.mktemp("demo-template")
    import os

    old_tz = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Berlin"
    try:
        assert (
            main(["--home", str(home), "--demo", "--now", DEMO_NOW, "contacts", "list", "--limit", "1"]) == 0
        )
    finally:
        if old_tz is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old_tz
    return home


@pytest.fixture
def demo_home(demo_template: Path, tmp_path: Path) -> Path:
    home = tmp_path / "demo-home"
    shutil.copytree(demo_template, home)
    return home
