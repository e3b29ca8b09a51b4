"""Firing automation from the app or the command line: the core engine with this installation's mail builder,
documents folder, report templates, time zone and user."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from crm_tui.core.assets import assets_dir
from crm_tui.core.automation import actions, engine
from crm_tui.core.clock import Clock
from crm_tui.mail.automation import builder
from crm_tui.runtime.context import AppContext


def report_dirs(context: AppContext) -> list[Path]:
    """The user's own report templates first (config/reports/NAME.j2), then the shipped ones."""
    return [context.paths.config_dir / "reports", assets_dir() / "templates" / "report"]


def context_factory(
    context: AppContext, *, clock: Clock | None = None, me_id: int | None = None
) -> Callable[[], actions.FireContext]:
    clock = clock or context.clock
    build = builder(clock)
    folders = report_dirs(context)

    def make() -> actions.FireContext:
        return actions.FireContext(
            now=clock.now(), build=build, documents=context.document_store(), report_dirs=folders,
            me_id=me_id, zone=context.zone,
        )  # fmt: skip

    return make


class _Pinned:
    def __init__(self, instant: datetime):
        self._instant = instant

    def now(self) -> datetime:
        return self._instant


def run_due(
    context: AppContext,
    *,
    now: datetime | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> engine.RunReport:
    clock = _Pinned(now) if now is not None else context.clock
    make = context_factory(context, clock=clock, me_id=context.me_id())
    return engine.run_due(context.database(), make, on_progress=on_progress)
