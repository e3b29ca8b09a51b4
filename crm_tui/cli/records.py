"""`crm-tui contacts|users|opportunities|activities ...`: the records and the people who use crm-tui, listed
(and users added). Each handler takes the AppContext and the parsed arguments and returns an exit code."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from crm_tui.cli.arguments import Commands, UsageError, action_group, iso_date, listing
from crm_tui.cli.output import print_json, print_table
from crm_tui.core.clock import local_day_bounds
from crm_tui.core.money import format_amount
from crm_tui.core.search_text import MAX_SEARCH_TERMS, left_out_terms
from crm_tui.core.types import ref_str

if TYPE_CHECKING:
    from crm_tui.runtime.context import AppContext


def register(commands: Commands) -> None:
    contacts = action_group(commands, "contacts", "contacts")
    sub = listing(contacts, "list", "list contacts, sorted by name")
    sub.add_argument(
        "--search",
        metavar="TEXT",
        help="only contacts matching every word (name, e-mail, organization, phone)",
    )
    sub.set_defaults(handler=contacts_list)

    people = action_group(commands, "users", "the people who use crm-tui (the first one is me)")
    sub = listing(people, "list", "list users")
    sub.set_defaults(handler=users_list)
    sub = people.add_parser("add", help="add a user (the first one is me until the config says otherwise)")
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("email", metavar="EMAIL")
    sub.set_defaults(handler=users_add)

    deals = action_group(commands, "opportunities", "opportunities (deals)")
    sub = listing(deals, "list", "list opportunities by pipeline and stage")
    sub.add_argument("--pipeline", metavar="NAME", help="only this pipeline")
    sub.set_defaults(handler=opportunities_list)

    acts = action_group(commands, "activities", "activities (calls, meetings, tasks)")
    sub = listing(acts, "list", "list activities by start time")
    sub.add_argument(
        "--from", dest="date_from", type=iso_date, metavar="DATE", help="from this local day (YYYY-MM-DD)"
    )
    sub.add_argument(
        "--to", dest="date_to", type=iso_date, metavar="DATE", help="up to and including this day"
    )
    sub.set_defaults(handler=activities_list)


def contacts_list(context: AppContext, args: argparse.Namespace) -> int:
    # the services load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core.services.contacts import search_contacts

    with context.database().read() as session:
        rows = search_contacts(session, args.search, limit=args.limit)
    if left_out_terms(args.search):
        print(
            f"crm-tui: --search takes the first {MAX_SEARCH_TERMS} words; "
            f"the other {left_out_terms(args.search)} were left out",
            file=sys.stderr,
        )
    if args.json:
        print_json(
            (
                {
                    "id": ref_str("contact", c.id),
                    "name": c.name,
                    "first_name": c.first_name,
                    "last_name": c.last_name,
                    "job_title": c.job_title,
                    "emails": list(c.emails),
                    "phones": list(c.phones),
                    "organization": ref_str("organization", c.organization_id),
                    "organization_name": c.organization_name,
                    "owner": ref_str("user", c.owner_id),
                    "owner_name": c.owner_name,
                    "postcode": c.postcode,
                    "city": c.city,
                    "region": c.region,
                    "created_at": c.created_at,
                    "updated_at": c.updated_at,
                }
                for c in rows
            ),
            context.zone,
        )
    else:
        print_table(
            ["id", "name", "email", "organization", "phone", "city"],
            (
                (
                    f"contact:{c.id}",
                    c.name,
                    c.emails[0] if c.emails else "",
                    c.organization_name,
                    c.phones[0] if c.phones else "",
                    c.city,
                )
                for c in rows
            ),
            context.zone,
        )
    return 0


def opportunities_list(context: AppContext, args: argparse.Namespace) -> int:
    # the services load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core.services.opportunities import list_opportunities
    from crm_tui.core.services.pipelines import pipeline_by_name

    with context.database().read() as session:
        pipeline_id = pipeline_by_name(session, args.pipeline).id if args.pipeline else None
        rows = list_opportunities(
            session, pipeline_id=pipeline_id, limit=args.limit, partner_id=context.partner_id()
        )
    if args.json:
        print_json(
            (
                {
                    "id": ref_str("opportunity", d.id),
                    "title": d.title,
                    "amount": format_amount(d.amount_cents),
                    "currency": d.currency,
                    "pipeline": d.pipeline_name,
                    "stage": d.stage_name,
                    "stage_kind": d.stage_kind,
                    "probability": d.probability,
                    "expected_close": d.expected_close,
                    "owner": ref_str("user", d.owner_id),
                    "owner_name": d.owner_name,
                    "organization": ref_str("organization", d.organization_id),
                    "organization_name": d.organization_name,
                    "primary_contact": ref_str("contact", d.primary_contact_id),
                    "installer": ref_str("organization", d.installer_id),
                    "reseller": ref_str("organization", d.reseller_id),
                    "lost_reason": d.lost_reason,
                    "open_substates": list(d.open_substates),
                    "stage_entered_at": d.stage_entered_at,
                    "updated_at": d.updated_at,
                }
                for d in rows
            ),
            context.zone,
        )
    else:
        print_table(
            ["id", "title", "amount", "pipeline", "stage", "close", "organization", "owner"],
            (
                (
                    f"opportunity:{d.id}",
                    d.title,
                    f"{format_amount(d.amount_cents)} {d.currency}",
                    d.pipeline_name,
                    d.stage_name,
                    d.expected_close,
                    d.organization_name,
                    d.owner_name,
                )
                for d in rows
            ),
            context.zone,
        )
    return 0


def activities_list(context: AppContext, args: argparse.Namespace) -> int:
    # the services load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core.services.activities import list_activities

    if args.date_from and args.date_to and args.date_to < args.date_from:
        raise UsageError("--to is before --from")
    start = local_day_bounds(args.date_from, context.zone)[0] if args.date_from else None
    end = local_day_bounds(args.date_to, context.zone)[1] if args.date_to else None
    with context.database().read() as session:
        rows = list_activities(session, start=start, end=end, limit=args.limit)
    if args.json:
        print_json((_activity_json(a) for a in rows), context.zone)
    else:
        print_table(
            ["id", "start", "type", "status", "subject", "person", "owner"],
            (
                (f"activity:{a.id}", a.start_at, a.type, a.status, a.subject, a.person_name, a.owner_name)
                for a in rows
            ),
            context.zone,
        )
    return 0


def _activity_json(a: Any) -> dict[str, Any]:
    return {
        "id": ref_str("activity", a.id),
        "type": a.type,
        "task_type": a.task_type,
        "subject": a.subject,
        "status": a.status,
        "start": a.start_at,
        "end": a.end_at,
        "owner": ref_str("user", a.owner_id),
        "owner_name": a.owner_name,
        "person": ref_str("contact", a.contact_id) or ref_str("lead", a.lead_id),
        "person_name": a.person_name,
        "organization": ref_str("organization", a.organization_id),
        "opportunity": ref_str("opportunity", a.opportunity_id),
        "reminder_at": a.reminder_at,
    }


def users_list(context: AppContext, args: argparse.Namespace) -> int:
    # the services load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core.services import users

    with context.database().read() as session:
        me = users.current_user(session, context.settings.me)
        rows = users.list_users(session)[: args.limit] if args.limit else users.list_users(session)
        data = [
            {"id": ref_str("user", u.id), "name": u.name, "email": u.email, "me": me is not None and me.id == u.id,
             "active": u.active, "organization": ref_str("organization", u.organization_id)}
            for u in rows
        ]  # fmt: skip
    if args.json:
        print_json(data, context.zone)
    else:
        print_table(
            ["id", "name", "e-mail", "me"], [(d["id"], d["name"], d["email"], "me" if d["me"] else "") for d in data],
            context.zone,
        )  # fmt: skip
    return 0


def users_add(context: AppContext, args: argparse.Namespace) -> int:
    # the services load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core.services import users

    with context.database().write() as session:
        user = users.create_user(
            session, users.UserInput(name=args.name, email=args.email), now=context.clock.now()
        )
        first = len(users.list_users(session)) == 1
    print(f"user:{user.id} {user.name} added" + (" (this is me: the first user)" if first else ""))
    return 0
