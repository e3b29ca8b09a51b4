"""Building the app the way the CLI does, on a pinned clock, and waiting for workers in Pilot tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from crm_tui.context import AppContext
from crm_tui.core.clock import FixedClock
from crm_tui.paths import resolve_paths
from crm_tui.settings import Settings, load_settings

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
ZONE = ZoneInfo("Europe/Berlin")


def make_context(
    home: Path, *, demo: bool, settings: Settings | None = None, db_url: str | None = None
) -> AppContext:
    """The app's context on the pinned clock. Mail written in the app goes out at once here (no
    ``send_delay_seconds``: a pinned clock would hold it for good) unless ``settings`` say otherwise."""
    paths = resolve_paths(home)
    return AppContext(
        paths=paths,
        settings=settings or replace(load_settings(paths.config_file), send_delay_seconds=0),
        clock=FixedClock(NOW),
        zone=ZONE,
        demo=demo,
        db_url=db_url,
    )


async def wait_for(condition: Callable[[], Any], pilot: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)
