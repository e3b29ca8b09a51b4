"""Scale benchmark: seed a large database in a temporary home, then time the services' first-page queries.

    python benchmarks/search_scale.py            # the issue's scale: 50k contacts, 20k deals, 100k activities, 100k mails
    python benchmarks/search_scale.py --tiny     # a few hundred rows: proves the script still runs (CI)

Prints one line per measurement: median and worst of the repeated runs, in milliseconds. Seeding uses bulk
inserts (not the services) for speed, but computes search text with the same function the services use.
"""

from __future__ import annotations

import argparse
import gc
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from crm_tui.core import models as m
from crm_tui.core.db import Database, open_database, sqlite_url
from crm_tui.core.search_text import search_blob
from crm_tui.core.services import activities, contacts, mail_store, opportunities, triage

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
FIRST = [
    "Anna",
    "Jonas",
    "Mia",
    "Lukas",
    "Lea",
    "Felix",
    "Emma",
    "Paul",
    "Sofia",
    "Noah",
    "Ida",
    "Theo",
    "Nora",
    "Karl",
]
LAST = [
    "Berg",
    "Weber",
    "Schulz",
    "Brandt",
    "Fischer",
    "Wagner",
    "Becker",
    "Hoffmann",
    "Koch",
    "Richter",
    "Klein",
    "Wolf",
    "Neumann",
    "Schwarz",
    "Zimmermann",
    "Krüger",
    "Hartmann",
    "Lange",
    "Werner",
    "Krause",
]
WORDS = [
    "Nord",
    "Sonnen",
    "Alpen",
    "Rhein",
    "Elbe",
    "Linden",
    "Berg",
    "See",
    "Tannen",
    "Weit",
    "Korn",
    "Falken",
]


# One deal with a long story, for the deal screen's benchmark (app_scale.py): this many of the mails are filed
# on it and this many activities are about it (fewer on a tiny database).
BIG_DEAL_ID = 1
BIG_DEAL_MAILS = 2_000
BIG_DEAL_ACTIVITIES = 500


def big_deal_sizes(sizes: dict[str, int]) -> tuple[int, int]:
    """(mails, activities) of the big deal on a database of these sizes."""
    return min(BIG_DEAL_MAILS, sizes["messages"]), min(BIG_DEAL_ACTIVITIES, sizes["activities"])


def _activities(sizes: dict[str, int], rng: random.Random) -> Iterable[dict[str, Any]]:
    _, on_big_deal = big_deal_sizes(sizes)
    for i in range(1, sizes["activities"] + 1):
        start = NOW + timedelta(minutes=15 * rng.randint(-40_000, 40_000))
        yield {
            "id": i,
            "type": "call",
            "subject": f"Call {i}",
            "contact_id": rng.randint(1, sizes["contacts"]),
            "start_at": start,
            "end_at": start + timedelta(minutes=15),
            "owner_id": rng.randint(1, 10),
            "status": "planned" if i % 4 else "done",
            "opportunity_id": BIG_DEAL_ID if i <= on_big_deal else None,
            "created_at": NOW,
            "updated_at": NOW,
        }


def _messages(sizes: dict[str, int]) -> Iterable[dict[str, Any]]:
    body = ("Hallo,\n\nanbei das Angebot.\n\nViele Grüße\n" * 8).encode()
    for i in range(1, sizes["messages"] + 1):
        raw = b"From: a@example.com\r\nSubject: Angebot %d\r\n\r\n" % i + body
        yield {
            "id": i,
            "message_id_header": f"<m{i}@example.com>",
            "subject": f"Angebot {i}",
            "from_name": "A",
            "from_address": "a@example.com",
            "to_addresses": "",
            "cc_addresses": "",
            "sent_at": NOW - timedelta(minutes=5 * i),
            # Conversations of three (customer, me, customer), newest first: the inbox views' threads.
            "thread_id": ((i - 1) // 3) * 3 + 1,
            "body_text": body.decode(),
            "has_attachments": False,
            "raw": raw,
            "size": len(raw),
            "is_outgoing": i % 3 == 2 or i % 6 == 1,  # every other conversation ends with my mail
            "is_read": False,
            "received_at": NOW,
        }


def insert_batched(session: Any, model: type, rows: Iterable[dict[str, Any]], size: int = 10_000) -> None:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            session.execute(insert(model), batch)
            batch = []
    if batch:
        session.execute(insert(model), batch)


def seed(db: Database, sizes: dict[str, int], rng: random.Random) -> None:
    with db.write() as session:
        session.execute(
            insert(m.User),
            [
                {
                    "id": i,
                    "name": f"User {i}",
                    "email": f"user{i}@example.com",
                    "active": True,
                    "created_at": NOW,
                }
                for i in range(1, 11)
            ],
        )
        org_names = {}
        rows = []
        for i in range(1, sizes["organizations"] + 1):
            name = f"{rng.choice(WORDS)}{rng.choice(WORDS).lower()} {i} GmbH"
            org_names[i] = name
            rows.append(
                {
                    "id": i,
                    "name": name,
                    "kind": "customer",
                    "search_text": search_blob(name),
                    "created_at": NOW,
                    "updated_at": NOW,
                    "owner_id": rng.randint(1, 10),
                }
            )
        session.execute(insert(m.Organization), rows)
        session.execute(
            insert(m.OrganizationDomain),
            [{"organization_id": i, "domain": f"org{i}.example"} for i in org_names],
        )
        contact_rows, email_rows, phone_rows = [], [], []
        for i in range(1, sizes["contacts"] + 1):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            org = rng.randint(1, sizes["organizations"])
            emails = [f"{first}.{last}{i}@org{org}.example".lower()]
            if i % 3 == 0:
                emails.append(f"{first}{i}@example.net".lower())
            phones = [f"+49 {rng.randint(150, 179)} {rng.randint(1000000, 9999999)}"]
            contact = m.Contact(first_name=first, last_name=last, city="Hamburg", postcode="20095")
            contact_rows.append(
                {
                    "id": i,
                    "first_name": first,
                    "last_name": last,
                    "organization_id": org,
                    "owner_id": rng.randint(1, 10),
                    "city": "Hamburg",
                    "postcode": "20095",
                    "created_at": NOW,
                    "updated_at": NOW,
                    "search_text": contacts.contact_search_text(contact, emails, phones, org_names[org]),
                }
            )
            email_rows += [{"contact_id": i, "address": a, "position": n} for n, a in enumerate(emails)]
            phone_rows += [{"contact_id": i, "number": p, "position": n} for n, p in enumerate(phones)]
        for table, rows in (
            (m.Contact, contact_rows),
            (m.ContactEmail, email_rows),
            (m.ContactPhone, phone_rows),
        ):
            insert_batched(session, table, rows)
        session.execute(insert(m.Pipeline), [{"id": 1, "name": "Sales", "position": 0}])
        stages = [
            ("Qualification", "open", 10),
            ("Proposal", "open", 50),
            ("Negotiation", "open", 75),
            ("Won", "won", 100),
            ("Lost", "lost", 0),
        ]
        session.execute(
            insert(m.Stage),
            [
                {"id": n + 1, "pipeline_id": 1, "name": name, "kind": kind, "probability": p, "position": n}
                for n, (name, kind, p) in enumerate(stages)
            ],
        )
        session.execute(
            insert(m.Opportunity),
            [
                {
                    "id": i,
                    "title": f"Deal {i}",
                    "amount_cents": rng.randint(1_000, 500_000) * 100,
                    "currency": "EUR",
                    "pipeline_id": 1,
                    # (the random draw is kept for the big deal too: the other deals stay as they were)
                    "stage_id": (rng.randint(1, 5), 2)[i == BIG_DEAL_ID],
                    "owner_id": rng.randint(1, 10),
                    "organization_id": rng.randint(1, sizes["organizations"]),
                    "stage_entered_at": NOW - timedelta(days=30) if i == BIG_DEAL_ID else NOW,
                    "lost_reason": "price",
                    "search_text": f"deal {i}",
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for i in range(1, sizes["opportunities"] + 1)
            ],
        )
        session.execute(
            insert(m.OpportunityContact),
            [
                {"opportunity_id": i, "contact_id": rng.randint(1, sizes["contacts"]), "is_primary": True}
                for i in range(1, sizes["opportunities"] + 1)
            ],
        )
        insert_batched(session, m.Activity, _activities(sizes, rng))
        insert_batched(session, m.MailMessage, _messages(sizes))
        mails, _ = big_deal_sizes(sizes)
        insert_batched(
            session,
            m.MailLink,
            (
                {"message_id": i, "record_type": "opportunity", "record_id": BIG_DEAL_ID, "reason": "address",
                 "created_at": NOW}
                for i in range(1, mails + 1)
            ),
        )  # fmt: skip
        session.execute(
            insert(m.OpportunityHistory),
            [
                {"opportunity_id": BIG_DEAL_ID, "kind": "stage", "from_stage_id": None, "to_stage_id": 1,
                 "note": "created", "changed_at": NOW - timedelta(days=60)},
                {"opportunity_id": BIG_DEAL_ID, "kind": "stage", "from_stage_id": 1, "to_stage_id": 2,
                 "changed_at": NOW - timedelta(days=30)},
            ],
        )  # fmt: skip
    db.dispose()
    raw = sqlite3.connect(str(db.engine.url.database))
    raw.execute("ANALYZE")
    # Bulk seeding leaves a write-ahead log of hundreds of MB that a real database never carries.
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.close()


def timed(db: Database, action: Callable[[Any], Any], repeat: int) -> tuple[float, float, Any]:
    samples, result = [], None
    for _ in range(repeat):
        with db.read() as session:
            started = time.perf_counter()
            result = action(session)
            samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), max(samples), result


SIZES = {
    "organizations": 5_000,
    "contacts": 50_000,
    "opportunities": 20_000,
    "activities": 100_000,
    "messages": 100_000,
}


def tiny_sizes() -> dict[str, int]:
    return {key: max(20, value // 500) for key, value in SIZES.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a few hundred rows, to prove the script runs")
    parser.add_argument("--repeat", type=int, default=20, help="runs per measurement (default 20)")
    parser.add_argument("--keep", metavar="DIR", help="seed into DIR and keep it (default: a temporary home)")
    args = parser.parse_args(argv)
    sizes = tiny_sizes() if args.tiny else dict(SIZES)
    if args.tiny:
        args.repeat = min(args.repeat, 3)
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="crm-tui-bench-") as temporary:
        home = Path(args.keep or temporary)
        db = open_database(sqlite_url(home / "data" / "crm.sqlite3"))
        started = time.perf_counter()
        seed(db, sizes, rng)
        print(
            f"seeded {', '.join(f'{v:,} {k}' for k, v in sizes.items())} in {time.perf_counter() - started:.1f} s"
        )
        with db.read() as session:
            sample = contacts.search_contacts(session, None, limit=1, offset=sizes["contacts"] // 2)[0]
        rare_email = sample.emails[0]
        phone_digits = "".join(ch for ch in sample.phones[0] if ch.isdigit())[-7:]
        queries = {
            "no filter": "",
            "common last name (fischer)": "fischer",
            "first + last name (anna berg)": "anna berg",
            "organization word (nordsee)": "nordsee",
            "one exact e-mail": rare_email,
            "phone digits": phone_digits,
            "a term no contact has": "zzqx",
        }
        db.dispose()
        # Seeding built millions of Python objects the app never holds; collect them so a GC pass over that
        # heap does not land inside a measurement.
        gc.collect()
        db = open_database(sqlite_url(home / "data" / "crm.sqlite3"))
        started = time.perf_counter()
        with db.read() as session:
            first = contacts.search_contacts(session, "fischer", limit=50)
        cold = (time.perf_counter() - started) * 1000
        print(f"{'measurement':<52} {'median ms':>10} {'worst ms':>10} {'rows':>6}")
        print(
            f"{'first contact search after opening (cold, once)':<52} {cold:>10.2f} {cold:>10.2f} {len(first):>6}"
        )
        for label, text in queries.items():
            median, worst, rows = timed(
                db, lambda s, t=text: contacts.search_contacts(s, t, limit=50), args.repeat
            )
            print(f"contact search first page: {label:<25} {median:>10.2f} {worst:>10.2f} {len(rows):>6}")
        median, worst, total = timed(db, lambda s: contacts.count_contacts(s, "fischer"), args.repeat)
        print(f"{'contact count (fischer)':<52} {median:>10.2f} {worst:>10.2f} {total:>6}")
        median, worst, rows = timed(
            db, lambda s: opportunities.list_opportunities(s, pipeline_id=1, limit=50), args.repeat
        )
        print(f"{'opportunities first page':<52} {median:>10.2f} {worst:>10.2f} {len(rows):>6}")
        median, worst, rows = timed(
            db,
            lambda s: activities.list_activities(s, start=NOW, end=NOW + timedelta(days=7), limit=500),
            args.repeat,
        )
        print(f"{'activities of one week':<52} {median:>10.2f} {worst:>10.2f} {len(rows):>6}")
        median, worst, rows = timed(db, lambda s: mail_store.list_messages(s, limit=50), args.repeat)
        print(f"{'messages first page (newest first)':<52} {median:>10.2f} {worst:>10.2f} {len(rows):>6}")
        for view in ("awaiting", "no-reply", "deals", "unlinked"):
            condition = triage.view_condition(view, now=NOW)
            median, worst, rows = timed(
                db, lambda s, c=condition: mail_store.list_messages(s, limit=50, where=c), args.repeat
            )
            print(f"inbox view first page: {view:<29} {median:>10.2f} {worst:>10.2f} {len(rows):>6}")
            median, worst, total = timed(
                db, lambda s, c=condition: mail_store.count_messages(s, where=c, cap=10_000), args.repeat
            )
            print(f"inbox view count (to 10,000): {view:<22} {median:>10.2f} {worst:>10.2f} {total:>6}")
        db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
