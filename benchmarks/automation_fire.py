"""Automation benchmark: how long firing 10,000 due actions takes (target: under 10 s).

    python benchmarks/automation_fire.py           # 10,000 due actions: 2,500 deals x 4 rules
    python benchmarks/automation_fire.py --tiny    # 200 actions: proves the script still runs (CI)

The mix: a planned call (activity), a repeat lead, a sub-state opened (which itself schedules nothing) and a
templated mail queued in the outbox (rendered, built with the email library, stored raw). Seeding goes through
the services (deals moved into a stage schedule the jobs as in real use); only the firing is timed, in one
process, the way `crm-tui automations run` does it (batches of 250, one transaction each, its gc settings).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from crm_tui.cli.automation import tune_gc_for_batch_work
from crm_tui.core import models as m
from crm_tui.core.automation import actions, engine, rules
from crm_tui.core.clock import FixedClock
from crm_tui.core.db import open_database, sqlite_url
from crm_tui.core.services import (
    attachments,
    contacts,
    email_templates,
    mail_accounts,
    opportunities,
    pipelines,
    users,
)
from crm_tui.mail.automation import builder

MOVED = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
FIRE_AT = MOVED + timedelta(days=2)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deals", type=int, default=2500, help="deals moved into the stage (4 actions each)")
    parser.add_argument("--tiny", action="store_true", help="50 deals (200 actions): for CI")
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of the firing to FILE")
    parser.add_argument("--only", metavar="RULE", action="append", choices=["call", "repeat", "offer", "mail"],
                        help="only these rules (repeatable; default: all four)")  # fmt: skip
    args = parser.parse_args()
    deals = 50 if args.tiny else args.deals
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        db = open_database(sqlite_url(home / "crm.sqlite3"))
        started = time.perf_counter()
        with db.write() as s:
            me = users.create_user(s, users.UserInput(name="Anna Berg", email="anna@crm.example"), now=MOVED)
            mail_accounts.create_account(
                s,
                mail_accounts.AccountInput(
                    name="work",
                    user_id=me.id,
                    preset="other",
                    imap_host="127.0.0.1",
                    imap_port=143,
                    imap_security="none",
                    username="anna@crm.example",
                    password_source="env",
                    password_ref="UNUSED",
                    addresses=["anna@crm.example"],
                    smtp_host="127.0.0.1",
                    smtp_port=25,
                    smtp_security="none",
                ),  # fmt: skip
                now=MOVED,
                default_user_id=me.id,
            )
            S = pipelines.StageInput
            pipe = pipelines.create_pipeline(
                s,
                "Sales",
                [S("New", "open", 10), S("Proposal", "open", 50, ["Offer sent"]), S("Won", "won", 100)],
            )
            new, proposal, _won = pipelines.stages_of(s, pipe.id)  # type: ignore[arg-type]
            offer_sent = pipelines.substates_of(s, proposal.id)[0]  # type: ignore[arg-type]
            email_templates.create_template(
                s,
                email_templates.TemplateInput(
                    name="Offer follow-up",
                    subject="Ihr Angebot: {{ deal.title }}",
                    body="Hallo {{ contact.first_name }},\n\nhaben Sie Fragen zu {{ deal.title }} ({{ deal.amount }})?\n\n"
                    "Viele Grüße\n{{ me.name }}\n",
                ),  # fmt: skip
                now=MOVED,
            )
            R = rules.RuleInput
            common = {"stage_id": proposal.id, "trigger": "enter", "delay_value": 1, "delay_unit": "days"}
            wanted = set(args.only or ["call", "repeat", "offer", "mail"])
            for name, action, params in (
                ("call", "plan_activity", {"type": "call", "subject": "Call about {{ deal.title }}"}),
                ("repeat", "repeat_lead", {"title": "Again: {{ deal.title }}"}),
                ("offer", "set_substate", {"substate_id": offer_sent.id}),
                ("mail", "send_email", {"template": "Offer follow-up", "to": "primary_contact"}),
            ):
                if name in wanted:
                    rules.create_rule(s, R(name, action, params=params, **common), now=MOVED)  # type: ignore[arg-type]
            for n in range(deals):
                person = contacts.create_contact(
                    s,
                    contacts.ContactInput(
                        first_name="Eva", last_name=f"Kunde{n}", emails=[f"eva{n}@kunde.example"]
                    ),
                    now=MOVED,
                )
                deal = opportunities.create_opportunity(
                    s,
                    opportunities.OpportunityInput(
                        title=f"Dach {n:05d}",
                        pipeline_id=pipe.id,
                        stage_id=new.id,  # type: ignore[arg-type]
                        amount_cents=1_250_000,
                        owner_id=me.id,
                        contact_ids=[person.id],
                    ),  # type: ignore[list-item]
                    now=MOVED,
                    user_id=me.id,
                )
                opportunities.move_to_stage(s, deal.id, proposal.id, now=MOVED, user_id=me.id)  # type: ignore[arg-type]
        seeded = time.perf_counter() - started
        with db.read() as s:
            due = int(s.scalar(select(func.count()).select_from(m.AutomationJob)) or 0)
        clock = FixedClock(FIRE_AT)
        build = builder(clock)

        def context() -> actions.FireContext:
            return actions.FireContext(now=clock.now(), build=build, documents=attachments.FileStore(home / "documents"),
                                       me_id=me.id, zone=ZoneInfo("Europe/Berlin"))  # fmt: skip

        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        tune_gc_for_batch_work()  # as `crm-tui automations run` does
        started, cpu_started = time.perf_counter(), time.process_time()
        report = engine.run_due(db, context)
        fired_in, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        with db.read() as s:
            outbox = int(s.scalar(select(func.count()).select_from(m.OutboxItem)) or 0)
            leads = int(s.scalar(select(func.count()).select_from(m.Lead)) or 0)
            calls = int(s.scalar(select(func.count()).select_from(m.Activity)) or 0)
        db.dispose()
    failed = report.count("failed")
    print(f"seeded {deals} deals with {due} due actions in {seeded:.1f} s")
    print(f"fired {report.count('done')} actions ({failed} failed) in {fired_in:.2f} s "
          f"= {report.count('done') / fired_in:,.0f} actions/s (target: {due} in under 10 s)")  # fmt: skip
    # The firing is CPU-bound: its CPU time is about its wall time (the figure drifts with the host's speed).
    print(f"  CPU time of the firing process: {cpu:.2f} s")
    print(f"  made: {calls} activities, {leads} repeat leads, {outbox} mails in the outbox")
    return 1 if failed or report.count("done") != due else 0


if __name__ == "__main__":
    sys.exit(main())
