"""`crm-tui contacts|organizations|leads|opportunities|activities|tickets|quotes list|show` and `crm-tui users`:
the records listed and shown one by one (record_show.py), the people who use crm-tui listed and added. Each
handler takes the AppContext and the parsed arguments and returns an exit code."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from crm_tui.cli.arguments import (
    CommandParser,
    Commands,
    UsageError,
    action_group,
    iso_date,
    listing,
    record_id,
    showing,
)
from crm_tui.cli.output import print_json, print_table
from crm_tui.cli.record_show import show_handler
from crm_tui.core.clock import local_day_bounds
from crm_tui.core.money import format_amount, format_money
from crm_tui.core.search_text import MAX_SEARCH_TERMS, left_out_terms
from crm_tui.core.types import LeadStatus, OrganizationKind, QuoteStatus, RecordType, TicketStatus, ref_str

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
    _show(contacts, RecordType.CONTACT, "a contact")

    people = action_group(commands, "users", "the people who use crm-tui (the first one is me)")
    sub = listing(people, "list", "list users")
    sub.set_defaults(handler=users_list)
    sub = people.add_parser("add", help="add a user (the first one is me until the config says otherwise)")
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("email", metavar="EMAIL")
    sub.set_defaults(handler=users_add)
    groups = people.add_parser("groups", help="named groups of users (automation mail can go to one)")
    actions = groups.add_subparsers(
        dest="group_action", metavar="ACTION", required=True, parser_class=CommandParser
    )
    sub = listing(actions, "list", "list the groups and their members")
    sub.set_defaults(handler=groups_list)
    for name, help_text, handler in (
        ("create", "create a group", groups_create),
        ("delete", "delete a group (a rule mailing it then fails, saying so)", groups_delete),
    ):
        sub = actions.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("group", metavar="NAME")
        sub.set_defaults(handler=handler)
    sub = actions.add_parser("rename", help="rename a group", description="rename a group")
    sub.add_argument("group", metavar="NAME")
    sub.add_argument("new_name", metavar="NEW_NAME")
    sub.set_defaults(handler=groups_rename)
    for name, help_text, handler in (
        ("add", "add a user to a group", groups_add),
        ("remove", "take a user out of a group", groups_remove),
    ):
        sub = actions.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("group", metavar="NAME")
        sub.add_argument("user", metavar="USER", help="the user's e-mail address, user:N or N")
        sub.set_defaults(handler=handler)

    orgs = action_group(commands, "organizations", "organizations (customers, installers, resellers)")
    sub = listing(orgs, "list", "list organizations, sorted by name")
    _search(sub, "only organizations matching every word (name, domain, e-mail, place)")
    sub.add_argument("--kind", choices=[k.value for k in OrganizationKind], help="only this kind")
    sub.set_defaults(handler=organizations_list)
    _show(orgs, RecordType.ORGANIZATION, "an organization")

    leads = action_group(commands, "leads", "leads (people and companies that may buy)")
    sub = listing(leads, "list", "list leads, newest first")
    _search(sub, "only leads matching every word (title, person, company, e-mail)")
    sub.add_argument("--status", choices=[s.value for s in LeadStatus], help="only leads in this status")
    sub.set_defaults(handler=leads_list)
    _show(leads, RecordType.LEAD, "a lead")

    deals = action_group(commands, "opportunities", "opportunities (deals)")
    sub = listing(deals, "list", "list opportunities by pipeline and stage")
    sub.add_argument("--pipeline", metavar="NAME", help="only this pipeline")
    sub.add_argument(
        "--stage", metavar="NAME", help="only deals in this stage (with --pipeline where names repeat)"
    )
    sub.add_argument("--owner", metavar="EMAIL", help="only deals this user owns")
    _search(sub, "only deals matching every word (title, customer, contacts)")
    sub.set_defaults(handler=opportunities_list)
    _show(deals, RecordType.OPPORTUNITY, "an opportunity")
    for name, help_text, handler in (
        ("follow", "add a user to the deal's followers (its team, with the owner)", opportunities_follow),
        ("unfollow", "take a user off the deal's followers", opportunities_unfollow),
    ):
        sub = deals.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "id", metavar="DEAL", type=record_id(RecordType.OPPORTUNITY), help="opportunity:N, or N"
        )
        sub.add_argument("user", metavar="USER", help="the user's e-mail address, user:N or N")
        sub.set_defaults(handler=handler)

    acts = action_group(commands, "activities", "activities (calls, meetings, tasks)")
    sub = listing(acts, "list", "list activities by start time")
    sub.add_argument(
        "--from", dest="date_from", type=iso_date, metavar="DATE", help="from this local day (YYYY-MM-DD)"
    )
    sub.add_argument(
        "--to", dest="date_to", type=iso_date, metavar="DATE", help="up to and including this day"
    )
    sub.set_defaults(handler=activities_list)
    _show(acts, RecordType.ACTIVITY, "an activity")

    tickets = action_group(commands, "tickets", "tickets (service requests)")
    sub = listing(tickets, "list", "list tickets, most recently changed first")
    _search(sub, "only tickets matching every word (subject, contact, organization)")
    sub.add_argument("--status", choices=[s.value for s in TicketStatus], help="only tickets in this status")
    sub.set_defaults(handler=tickets_list)
    _show(tickets, RecordType.TICKET, "a ticket")

    quotes = action_group(commands, "quotes", "quotes (offers on a deal)")
    sub = listing(quotes, "list", "list quotes, newest first")
    _search(sub, "only quotes matching every word (number, deal)")
    sub.add_argument("--status", choices=[s.value for s in QuoteStatus], help="only quotes in this status")
    sub.set_defaults(handler=quotes_list)
    _show(quotes, RecordType.QUOTE, "a quote")


def _search(sub: argparse.ArgumentParser, help_text: str) -> None:
    sub.add_argument("--search", metavar="TEXT", help=help_text)


def _show(group: Commands, record_type: RecordType, what: str) -> None:
    sub = showing(group, record_type, f"show {what}: every fact, its custom fields and related records")
    sub.set_defaults(handler=show_handler(record_type))


def _note_left_out(search: str | None) -> None:
    """--search takes the first MAX_SEARCH_TERMS words: say so on stderr when it had more."""
    if left_out_terms(search):
        print(
            f"crm-tui: --search takes the first {MAX_SEARCH_TERMS} words; "
            f"the other {left_out_terms(search)} were left out",
            file=sys.stderr,
        )


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
    from crm_tui.core.services.pipelines import pipeline_by_name, stage_by_name
    from crm_tui.core.services.users import user_by_email

    with context.database().read() as session:
        pipeline_id = pipeline_by_name(session, args.pipeline).id if args.pipeline else None
        stage_id = stage_by_name(session, args.stage, pipeline_id=pipeline_id) if args.stage else None
        owner_id = user_by_email(session, args.owner) if args.owner else None
        rows = list_opportunities(
            session,
            pipeline_id=pipeline_id,
            stage_id=stage_id,
            owner_id=owner_id,
            text=args.search,
            limit=args.limit,
            partner_id=context.partner_id(),
        )
    _note_left_out(args.search)
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


def _user_id(session: Any, text: str) -> int:
    """A user named by e-mail address, ``user:N`` or ``N``."""
    # In the handler: --help loads no SQLAlchemy (tests/cli/test_startup.py).
    from crm_tui.core import models as m
    from crm_tui.core.errors import NotFound
    from crm_tui.core.services import users

    value = text.strip()
    if value.startswith("user:"):
        value = value[len("user:") :]
    if value.isdigit():
        if session.get(m.User, int(value)) is None:
            raise NotFound(f"user:{value} does not exist")
        return int(value)
    return users.user_by_email(session, value)


def opportunities_follow(context: AppContext, args: argparse.Namespace) -> int:
    # In the handler: --help loads no SQLAlchemy (tests/cli/test_startup.py).
    from crm_tui.core.services import team

    with context.database().write() as session:
        user_id = _user_id(session, args.user)
        added = team.follow(session, args.id, user_id, now=context.clock.now())
        who = ", ".join(f.name for f in team.followers(session, args.id))
    print(f"opportunity:{args.id}: user:{user_id} {'follows it now' if added else 'follows it already'}; "
          f"followers: {who}")  # fmt: skip
    return 0


def opportunities_unfollow(context: AppContext, args: argparse.Namespace) -> int:
    # In the handler: --help loads no SQLAlchemy (tests/cli/test_startup.py).
    from crm_tui.core.services import team

    with context.database().write() as session:
        user_id = _user_id(session, args.user)
        removed = team.unfollow(session, args.id, user_id)
        who = ", ".join(f.name for f in team.followers(session, args.id)) or "none"
    print(f"opportunity:{args.id}: user:{user_id} {'no longer follows it' if removed else 'did not follow it'}; "
          f"followers: {who}")  # fmt: skip
    return 0


def groups_list(context: AppContext, args: argparse.Namespace) -> int:
    # In the handler: --help loads no SQLAlchemy (tests/cli/test_startup.py).
    from crm_tui.core.services import team

    with context.database().read() as session:
        rows = team.groups(session)
    rows = rows[: args.limit] if args.limit else rows
    data = [
        {"name": g.name, "members": [{"id": ref_str("user", u.id), "name": u.name, "email": u.email} for u in g.members]}
        for g in rows
    ]  # fmt: skip
    if args.json:
        print_json(data, context.zone)
    else:
        print_table(
            ["group", "members"], [(g.name, ", ".join(u.name for u in g.members) or "-") for g in rows], context.zone
        )  # fmt: skip
    return 0


def groups_create(context: AppContext, args: argparse.Namespace) -> int:
    # In the handler: --help loads no SQLAlchemy (tests/cli/test_startup.py).
    from crm_tui.core.services import team

    with context.database().write() as session:
        team.create_group(session, args.group, now=context.clock.now())
    print(f"group {args.group.strip()!r} created")
    return 0


def groups_rename(context: AppContext, args: argparse.Namespace) -> int:
    # In the handler: --help loads no SQLAlchemy (tests/cli/test_startup.py).
    from crm_tui.core.services import team

    with context.database().write() as session:
        team.rename_group(session, team.group_by_name(session, args.group), args.new_name)
    print(f"group {args.group.strip()!r} is now {args.new_name.strip()!r}")
    return 0


def groups_delete(context: AppContext, args: argparse.Namespace) -> int:
    # In the handler: --help loads no SQLAlchemy (tests/cli/test_startup.py).
    from crm_tui.core.services import team

    with context.database().write() as session:
        team.delete_group(session, team.group_by_name(session, args.group))
    print(f"group {args.group.strip()!r} deleted")
    return 0


def groups_add(context: AppContext, args: argparse.Namespace) -> int:
    # In the handler: --help loads no SQLAlchemy (tests/cli/test_startup.py).
    from crm_tui.core.services import team

    with context.database().write() as session:
        group_id, user_id = team.group_by_name(session, args.group), _user_id(session, args.user)
        added = team.add_member(session, group_id, user_id)
    print(f"user:{user_id} {'added to' if added else 'is already in'} group {args.group.strip()!r}")
    return 0


def groups_remove(context: AppContext, args: argparse.Namespace) -> int:
    # In the handler: --help loads no SQLAlchemy (tests/cli/test_startup.py).
    from crm_tui.core.services import team

    with context.database().write() as session:
        group_id, user_id = team.group_by_name(session, args.group), _user_id(session, args.user)
        removed = team.remove_member(session, group_id, user_id)
    print(f"user:{user_id} {'taken out of' if removed else 'was not in'} group {args.group.strip()!r}")
    return 0


def organizations_list(context: AppContext, args: argparse.Namespace) -> int:
    # the services load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core.services.organizations import organization_rows

    with context.database().read() as session:
        rows = organization_rows(session, args.search or "", kind=args.kind, limit=args.limit)
    _note_left_out(args.search)
    if args.json:
        print_json(
            (
                {"id": ref_str("organization", o.id), "name": o.name, "kind": o.kind, "phone": o.phone,
                 "postcode": o.postcode, "city": o.city, "region": o.region}
                for o in rows
            ),
            context.zone,
        )  # fmt: skip
    else:
        print_table(
            ["id", "name", "kind", "city", "phone"],
            ((f"organization:{o.id}", o.name, o.kind, o.city, o.phone) for o in rows),
            context.zone,
        )
    return 0


def leads_list(context: AppContext, args: argparse.Namespace) -> int:
    # the services load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core.services.leads import lead_rows

    with context.database().read() as session:
        rows = lead_rows(session, args.search or "", status=args.status, limit=args.limit)
    _note_left_out(args.search)
    if args.json:
        print_json(
            (
                {"id": ref_str("lead", r.id), "title": r.title, "status": r.status, "person_name": r.person_name,
                 "company_name": r.company_name, "source": r.source, "created_at": r.created_at}
                for r in rows
            ),
            context.zone,
        )  # fmt: skip
    else:
        print_table(
            ["id", "title", "status", "person", "company", "source"],
            ((f"lead:{r.id}", r.title, r.status, r.person_name, r.company_name, r.source) for r in rows),
            context.zone,
        )
    return 0


def tickets_list(context: AppContext, args: argparse.Namespace) -> int:
    # the services load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core.services.sales_documents import ticket_rows

    with context.database().read() as session:
        rows = ticket_rows(session, args.search or "", status=args.status, limit=args.limit)
    _note_left_out(args.search)
    if args.json:
        print_json(
            (
                {"id": ref_str("ticket", t.id), "subject": t.subject, "status": t.status,
                 "contact": ref_str("contact", t.contact_id), "contact_name": t.contact_name or None,
                 "organization": ref_str("organization", t.organization_id), "updated_at": t.updated_at}
                for t in rows
            ),
            context.zone,
        )  # fmt: skip
    else:
        print_table(
            ["id", "subject", "status", "contact", "updated"],
            ((f"ticket:{t.id}", t.subject, t.status, t.contact_name, t.updated_at) for t in rows),
            context.zone,
        )
    return 0


def quotes_list(context: AppContext, args: argparse.Namespace) -> int:
    # the services load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core.services.sales_documents import quote_rows

    with context.database().read() as session:
        rows = quote_rows(session, args.search or "", status=args.status, limit=args.limit)
    _note_left_out(args.search)
    if args.json:
        print_json(
            (
                {"id": ref_str("quote", q.id), "number": q.number, "status": q.status,
                 "opportunity": ref_str("opportunity", q.opportunity_id), "opportunity_title": q.opportunity_title,
                 "total": format_amount(q.total_cents), "currency": q.currency, "valid_until": q.valid_until}
                for q in rows
            ),
            context.zone,
        )  # fmt: skip
    else:
        print_table(
            ["id", "number", "status", "total", "valid until", "opportunity"],
            (
                (f"quote:{q.id}", q.number, q.status, format_money(q.total_cents, q.currency), q.valid_until,
                 q.opportunity_title)
                for q in rows
            ),
            context.zone,
        )  # fmt: skip
    return 0
