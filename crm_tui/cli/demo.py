"""`crm-tui --demo demo reset`: the demo data set, rebuilt for today."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from crm_tui.cli.arguments import Commands, UsageError, action_group

if TYPE_CHECKING:
    from crm_tui.runtime.context import AppContext


def register(commands: Commands) -> None:
    demo = action_group(commands, "demo", "the demo data set")
    sub = demo.add_parser(
        "reset", help="rebuild the demo database for today (the real database is untouched)"
    )
    sub.set_defaults(handler=demo_reset)


def demo_reset(context: AppContext, args: argparse.Namespace) -> int:
    if not context.demo:
        raise UsageError("demo reset only touches the demo database: run 'crm-tui --demo demo reset'")
    context.close()
    path = context.paths.database_file(demo=True)
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    context.database()
    print(f"demo database rebuilt for {context.today().isoformat()}: {path}", file=sys.stderr)
    return 0
