"""`crm-tui automations ...`: rules, what is pending, the log, and firing due actions headless (for cron)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from crm_tui.context import AppContext
from crm_tui.core.sanitize import terminal_safe
from crm_tui.output import print_json


def _rule_objects(context: AppContext) -> list[dict[str, Any]]:
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
                "action": rule.action,
                "does": actions.describe(session, rule),
                "pending": rules.pending_count(session, rule.id),  # type: ignore[arg-type]
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


def automations_pending(context: AppContext, args: argparse.Namespace) -> int:
    from crm_tui.core.automation import engine

    with context.database().read() as session:
        rows = engine.pending(session, limit=args.limit or 500)
    if args.json:
        print_json([row.as_json() for row in rows], context.zone)
        return 0
    if not rows:
        print("nothing pending")
    for row in rows:
        when = row.due_at.astimezone(context.zone).strftime("%Y-%m-%d %H:%M")
        print(
            f"{when}  {terminal_safe(row.rule, max_length=30):<30} {terminal_safe(row.record, max_length=40):<40} {terminal_safe(row.action, max_length=60)}"
        )
    return 0


def automations_log(context: AppContext, args: argparse.Namespace) -> int:
    from crm_tui.core.automation import engine

    with context.database().read() as session:
        rows = engine.log_rows(session, limit=args.limit or 100)
    if args.json:
        print_json([row.as_json() for row in rows], context.zone)
        return 0
    if not rows:
        print("the automation log is empty")
    for row in rows:
        when = row.at.astimezone(context.zone).strftime("%Y-%m-%d %H:%M")
        print(
            f"{when}  {row.outcome:<9} {terminal_safe(row.rule, max_length=30):<30} "
            f"{terminal_safe(row.record, max_length=30):<30} {terminal_safe(row.message, max_length=100)}"
        )
    return 0


def automations_run(context: AppContext, args: argparse.Namespace) -> int:
    from crm_tui.automation_runner import run_due
    from crm_tui.core.automation import engine
    from crm_tui.core.clock import parse_instant

    now = parse_instant(args.run_now, context.zone) if args.run_now else context.clock.now()
    if args.dry_run:
        with context.database().read() as session:
            rows = engine.pending(session, due_before=now, limit=100_000)
        if args.json:
            print_json([row.as_json() for row in rows], context.zone)
        else:
            for row in rows:
                when = row.due_at.astimezone(context.zone).strftime("%Y-%m-%d %H:%M")
                print(
                    f"would fire  {when}  {terminal_safe(row.rule, max_length=30):<30} {terminal_safe(row.record, max_length=40):<40} {terminal_safe(row.action, max_length=60)}"
                )
            print(
                f"{len(rows)} due action{'s' if len(rows) != 1 else ''} would fire (dry run: nothing changed)"
            )
        return 0
    progress = _Progress()
    report = run_due(context, now=now, on_progress=progress)
    progress.clear()
    if args.json:
        print_json([item.as_json() for item in report.items], context.zone)
    else:
        for item in report.items:
            if item.outcome != "done" or item.late_seconds >= engine.LATE_AFTER.total_seconds():
                print(
                    f"{item.outcome:<8} {terminal_safe(item.rule, max_length=30):<30} {terminal_safe(item.record, max_length=40):<40} {terminal_safe(item.message, max_length=120)}"
                )
        print(report.summary())
    return 1 if report.count("failed") else 0


class _Progress:
    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        if self.enabled and total > 50:
            sys.stderr.write(f"\rfiring due actions: {done}/{total}\x1b[K")
            sys.stderr.flush()
            self.shown = True

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
