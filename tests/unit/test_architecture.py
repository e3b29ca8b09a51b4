"""Layering and start-up hygiene: the core is headless, and importing anything touches no disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

WALK = """
import importlib, json, pkgutil, sys
import crm_tui
names = []
for package in {packages!r}:
    module = importlib.import_module(package)
    names.append(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        if ".migrations" in info.name or info.name.endswith("__main__"):
            continue
        importlib.import_module(info.name)
        names.append(info.name)
print(json.dumps({{"imported": names, "loaded": sorted(m.split(".")[0] for m in sys.modules)}}))
"""


def _import_in_subprocess(
    packages: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", WALK.format(packages=packages)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd or ROOT,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_core_and_mail_load_no_ui_library() -> None:
    report = _import_in_subprocess(["crm_tui.core", "crm_tui.mail"])
    assert "crm_tui.core.services.leads" in report["imported"]
    assert "crm_tui.mail.parse" in report["imported"]
    for forbidden in ("textual", "rich"):
        assert forbidden not in report["loaded"], f"{forbidden} was imported by core/ or mail/"


def test_core_loads_no_mail_transport() -> None:
    report = _import_in_subprocess(["crm_tui.core"])
    assert not {"imapclient", "yagmail", "textual", "rich"} & set(report["loaded"])


def test_import_linter_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ", 0 broken" in result.stdout
    for contract in ("layers: cli above ui above runtime", "core is headless", "widgets are reusable pieces"):
        assert any(line.startswith(contract) and line.endswith("KEPT") for line in result.stdout.splitlines())


def test_importing_every_module_touches_no_disk(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {
        **os.environ,
        "HOME": str(tmp_path / "user"),
        "XDG_DATA_HOME": str(tmp_path / "xdg-data"),
        "XDG_CONFIG_HOME": str(tmp_path / "xdg-config"),
        "XDG_STATE_HOME": str(tmp_path / "xdg-state"),
        "CRM_TUI_HOME": str(home),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    report = _import_in_subprocess(["crm_tui"], env=env, cwd=tmp_path)
    assert "crm_tui.ui.app" in report["imported"] and "crm_tui.ui.screens.contacts" in report["imported"]
    assert list(tmp_path.iterdir()) == [], "nothing is created at import time"


def test_paths_follow_home_option_then_env_then_platform(tmp_path: Path) -> None:
    from crm_tui.runtime.paths import resolve_paths

    by_option = resolve_paths(tmp_path / "a", environ={"CRM_TUI_HOME": str(tmp_path / "b")})
    assert by_option.data_dir == tmp_path / "a" / "data"
    assert by_option.config_file == tmp_path / "a" / "config" / "config.toml"
    by_env = resolve_paths(None, environ={"CRM_TUI_HOME": str(tmp_path / "b")})
    assert by_env.database_file() == tmp_path / "b" / "data" / "crm.sqlite3"
    assert by_env.database_file(demo=True) == tmp_path / "b" / "data" / "demo.sqlite3"
    platform = resolve_paths(None, environ={})
    assert "crm-tui" in str(platform.data_dir) and "crm-tui" in str(platform.config_dir)
    assert not (tmp_path / "a").exists(), "resolving paths creates nothing"
