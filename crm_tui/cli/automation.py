"""`crm-tui automations ...`: rules, what is pending, the log, and firing due actions headless (for cron)."""

from __future__ import annotations

import argparse
import gc
from typing import TYPE_CHECKING, Any

from crm_tui.cli.arguments import Commands, action_group, iso_instant, positive_int
from crm_tui.cli.output import ProgressLine, print_json
from crm_tui.core.clock import parse_instant
from crm_tui.core.sanitize import terminal_safe

if TYPE_CHECKING:
    from datetime import datetime

    from crm_tui.runtime.context import AppContext


def register(commands: Commands) -> None:
    autos = action_group(
        commands,
        "automations",
        "automation rules: list them, see what is pending, fire what is due (for cron)",
    )
    sub = autos.add_parser("list", help="the rules, where and when they fire, and how many actions wait")
    sub.add_argument("--json", action="store_true", help="print one JSON array of objects")
    sub.set_defaults(handler=automations_list)
    sub = autos.add_parser("pending", help="scheduled actions not fired yet, soonest first")
    sub.add_argument("--json", action="store_true", help="print one JSON array of objects")
    sub.add_argument("--limit", type=positive_int, metavar="N")
    sub.set_defaults(handler=automations_pending)
    sub = autos.add_parser("log", help="what fired, was skipped, failed or was cancelled, newest first")
    sub.add_argument("--json", action="store_true", help="print one JSON array of objects")
    sub.add_argument("--limit", type=positive_int, metavar="N")
    sub.set_defaults(handler=automations_log)
    sub = autos.add_parser(
        "run", help="fire every action due now (exit 1 if one failed); --dry-run shows what would fire"
    )
    sub.add_argument("--now", dest="run_now", metavar="ISO", type=iso_instant,
                     help="fire what is due at this ISO-8601 date-time instead of now")  # fmt: skip
    sub.add_argument("--dry-run", action="store_true", help="only show what would fire")
    sub.add_argument("--json", action="store_true", help="print one JSON array of objects")
    sub.set_defaults(handler=automations_run)


def _rule_objects(context: AppContext) -> list[dict[str, Any]]:
    # the automation modules load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core.automation import actions, rules

    with context.database().read() as session:
        return [
            {
                "id": rule.id,
                "name": rule.name,
                "enabled": rule.enabled,
                "entity": rule.entity,
                "where": rules.place(session, rule),
                "when": rules.when(rule),
                "event": rule.record_event,  # the record event it waits for (trigger "event"), else null
                "action": rule.action,
                "does": actions.describe(session, rule),
                "pending": rules.pending_of(session, rule),
                "late_policy": rule.late_policy,
                "late_limit_hours": rule.late_limit_hours,
                "survives_exit": rule.survives_exit,
            }  # fmt: skip
            for rule in rules.list_rules(session)
        ]


def automations_list(context: AppContext, args: argparse.Namespace) -> int:
    objects = _rule_objects(context)
    if args.json:
        print_json(objects, context.zone)
        return 0
    if not objects:
        print("no automation rules yet (add them in the app: Deals, key R)")
        return 0
    for rule in objects:
        mark = " " if rule["enabled"] else "-"
        print(
            f"{rule['id']:>4} {mark} {terminal_safe(rule['name'], max_length=34):<34} "
            f"{terminal_safe(rule['where'], max_length=40):<40} {rule['when']:<30} "
            f"{terminal_safe(rule['does'], max_length=60)}  [{rule['pending']} pending]"
        )
    return 0


def tune_gc_for_batch_work() -> None:
    """A one-shot run that makes thousands of ORM rows: what exists at start is not garbage (frozen), and the
    young generation is collected every 50,000 allocations instead of 700 (about 5-10 % of a big run)."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


SHOWN = 50  # failed, skipped or late actions listed by a run; the log has them all


def _local(context: AppContext, moment: datetime) -> str:
    return moment.astimezone(context.zone).strftime("%Y-%m-%d %H:%M")


def _cell(text: str, width: int) -> str:
    return f"{terminal_safe(text, max_length=width):<{width}}"


def _print_rows(context: AppContext, args: argparse.Namespace, rows: list[Any], empty: str, line: Any) -> int:
    if args.json:
        print_json([row.as_json() for row in rows], context.zone)
        return 0
    if not rows and empty:
        print(empty)
    for row in rows:
        print(line(row))
    return 0


def _pending_line(context: AppContext, row: Any, prefix: str = "") -> str:
    return f"{prefix}{_local(context, row.due_at)}  {_cell(row.rule, 30)} {_cell(row.record, 40)} {terminal_safe(row.action, max_length=60)}"


def automations_pending(context: AppContext, args: argparse.Namespace) -> int:
    # the automation modules load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core.automation import engine

    with context.database().read() as session:
        rows = engine.pending(session, limit=args.limit or 500)
    return _print_rows(context, args, rows, "nothing pending", lambda row: _pending_line(context, row))


def automations_log(context: AppContext, args: argparse.Namespace) -> int:
    # the automation modules load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core.automation import engine

    with context.database().read() as session:
        rows = engine.log_rows(session, limit=args.limit or 100)
    return _print_rows(
        context,
        args,
        rows,
        "the automation log is empty",
        lambda row: (
            f"{_local(context, row.at)}  {row.outcome:<9} {_cell(row.rule, 30)} {_cell(row.record, 30)} "
            f"{terminal_safe(row.message, max_length=100)}"
        ),
    )


def automations_run(context: AppContext, args: argparse.Namespace) -> int:
    # the automation modules load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core.automation import engine
    from crm_tui.runtime.automation import run_due

    now = parse_instant(args.run_now, context.zone) if args.run_now else context.clock.now()
    if args.dry_run:
        with context.database().read() as session:
            rows = engine.pending(session, due_before=now, limit=100_000)
        _print_rows(context, args, rows, "", lambda row: _pending_line(context, row, "would fire  "))
        if not args.json:
            print(
                f"{len(rows)} due action{'s' if len(rows) != 1 else ''} would fire (dry run: nothing changed)"
            )
        return 0
    tune_gc_for_batch_work()
    progress = ProgressLine()
    report = run_due(
        context, now=now, on_progress=lambda done, total: progress("firing due actions", done, total)
    )
    progress.clear()
    if args.json:
        print_json([item.as_json() for item in report.items], context.zone)
    else:
        notable = [
            i
            for i in report.items
            if i.outcome != "done" or i.late_seconds >= engine.LATE_AFTER.total_seconds()
        ]
        for item in notable[:SHOWN]:
            print(
                f"{item.outcome:<8} {_cell(item.rule, 30)} {_cell(item.record, 40)} {terminal_safe(item.message, max_length=120)}"
            )
        if len(notable) > SHOWN:
            print(f"... and {len(notable) - SHOWN} more (crm-tui automations log)")
        print(report.summary())
    return 1 if report.count("failed") else 0
