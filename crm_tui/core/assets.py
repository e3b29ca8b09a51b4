"""Where the shipped assets (stylesheets, templates, demo data) are: inside the installed package, or the
top-level ``assets/`` folder of a source checkout."""

from __future__ import annotations

from pathlib import Path


def assets_dir() -> Path:
    package = Path(__file__).resolve().parent.parent  # crm_tui/
    for candidate in (package / "assets", package.parent / "assets"):
        if (candidate / "demo" / "demo.toml").is_file():
            return candidate
    raise FileNotFoundError("crm-tui's assets folder is missing from this installation")
