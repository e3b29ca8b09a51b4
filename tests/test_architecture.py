"""Layering and start-up hygiene: the core is headless, and importing anything touches no disk."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

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
) -> dict[str, list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", WALK.format(packages=packages)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd or ROOT,
    )
    assert result.returncode == 0, result.stderr
    found: dict[str, list[str]] = json.loads(result.stdout)
    return found


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
    for contract in (
        "layers: cli above ui above runtime",
        "core is headless",
        "widgets are reusable pieces",
        "the UI holds no SQL",
    ):
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


UI_FORBIDDEN = ("sqlalchemy", "sqlmodel", "crm_tui.core.models")


def _imported_names(tree: ast.Module) -> list[str]:
    """Every module an import statement names, at any depth (in functions and under TYPE_CHECKING too)."""
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_ui_holds_no_sql() -> None:
    """No module under crm_tui/ui names SQLAlchemy, SQLModel or the ORM models in any import, not even under
    TYPE_CHECKING or inside a function: screens call core services that return plain data."""
    found = []
    for path in sorted((ROOT / "crm_tui" / "ui").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name in _imported_names(tree):
            if any(name == bad or name.startswith(bad + ".") for bad in UI_FORBIDDEN):
                found.append(f"{path.relative_to(ROOT)}: {name}")
    assert found == [], "the UI imports the ORM:\n" + "\n".join(found)


def test_the_ui_check_sees_every_kind_of_import() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from sqlmodel import Session\n"
        "def f():\n    import sqlalchemy.orm\n    from crm_tui.core import models as m\n"
    )
    names = _imported_names(ast.parse(source))
    assert {"sqlmodel", "sqlalchemy.orm", "crm_tui.core.models"} <= set(names)
