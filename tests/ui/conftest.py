"""Shared Pilot fixtures: ``app`` is the app on a copy of the demo (pinned clock, as the CLI builds it, no
background sync or automation timers unless a test asks), ``pilot`` drives it in a 160x48 terminal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from crm_tui.app import CrmApp
from tests.ui.helpers import make_context

SIZE = (160, 48)


@pytest.fixture
def app(demo_home: Path) -> Any:
    context = make_context(demo_home, demo=True)
    crm = CrmApp(context)
    yield crm
    context.close()


@pytest.fixture
async def pilot(app: CrmApp) -> AsyncIterator[Any]:
    async with app.run_test(size=SIZE) as driver:
        yield driver
