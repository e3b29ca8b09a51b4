"""Shared Pilot fixtures: ``app`` is the app (``make_app`` of tests/conftest.py) on a copy of the demo,
``pilot`` drives it in a 160x48 terminal."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.ui.keywalk import SIZE, RecordingApp


@pytest.fixture
def app(make_app: Callable[..., RecordingApp], demo_home: Path) -> RecordingApp:
    return make_app(demo_home)


@pytest.fixture
async def pilot(app: RecordingApp) -> AsyncIterator[Any]:
    async with app.run_test(size=SIZE) as driver:
        yield driver
