"""The demo data set: its size, its domains, and that the same seed and today give the same database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlmodel import SQLModel, col, select

from crm_tui.core import models as m
from crm_tui.core.db import Database, open_database, sqlite_url
from crm_tui.runtime.demo import build_demo

ZONE = ZoneInfo("Europe/Berlin")
RESERVED = (".example", "example.com", "example.net", "example.org")


def make(tmp_path: Path, name: str, today: date) -> Database:
    db = open_database(sqlite_url(tmp_path / f"{name}.sqlite3"))
    now = datetime(today.year, today.month, today.day, 8, 0, tzinfo=ZONE).astimezone(UTC)
    with db.write() as session:
        build_demo(session, today=today, now=now, zone=ZONE)
    return db


def dump(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    tables = [t for t in SQLModel.metadata.sorted_tables]
    with db.read() as session:
        return {
            t.name: sorted(map(tuple, session.execute(text(f'SELECT * FROM "{t.name}"')).all()), key=repr)
            for t in tables
        }


def test_demo_has_the_promised_size_and_only_reserved_domains(tmp_path: Path) -> None:
    db = make(tmp_path, "demo", date(2026, 11, 22))
    with db.read() as session:

        def count(model: type) -> int:
            return len(session.exec(select(model)).all())

        assert count(m.Contact) >= 150
        assert count(m.Organization) >= 40
        assert count(m.Lead) >= 30
        # Sales, Service contracts, Installation (automation copies won deals there)
        assert count(m.Pipeline) == 3
        assert count(m.Opportunity) >= 60
        assert count(m.Activity) >= 200
        assert count(m.User) == 5
        assert 24 <= count(m.MailMessage) <= 60
        kinds = {o.kind for o in session.exec(select(m.Organization))}
        assert kinds == {"customer", "installer", "reseller"}
        several = session.execute(
            text("SELECT contact_id FROM contact_email GROUP BY contact_id HAVING COUNT(*) > 1")
        ).all()
        assert len(several) >= 20
        assert session.exec(select(m.User).where(col(m.User.organization_id).is_not(None))).all(), (
            "a partner user"
        )
        assert session.exec(select(m.SubstateDefinition)).all()
        stage_kinds = {s.kind for s in session.exec(select(m.Stage))}
        assert stage_kinds == {"open", "won", "lost"}
        addresses = [e.address for e in session.exec(select(m.ContactEmail))]
        addresses += [u.email for u in session.exec(select(m.User))]
        addresses += [msg.from_address for msg in session.exec(select(m.MailMessage))]
        assert all(a.endswith(RESERVED) for a in addresses), [
            a for a in addresses if not a.endswith(RESERVED)
        ]
        starts = [a.start_at.astimezone(ZONE).date() for a in session.exec(select(m.Activity))]
        assert min(starts) >= date(2026, 11, 22) - timedelta(days=21)
        assert max(starts) <= date(2026, 11, 22) + timedelta(days=21)
        assert any(a.status == "cancelled" for a in session.exec(select(m.Activity)))
        assert any(lead.status == "converted" for lead in session.exec(select(m.Lead)))
    db.dispose()


def test_same_seed_and_today_give_the_same_database(tmp_path: Path) -> None:
    first, second = make(tmp_path, "one", date(2026, 6, 10)), make(tmp_path, "two", date(2026, 6, 10))
    assert dump(first) == dump(second)


def test_the_demo_moves_with_today(tmp_path: Path) -> None:
    early, late = make(tmp_path, "early", date(2026, 6, 10)), make(tmp_path, "late", date(2026, 6, 17))
    with early.read() as a, late.read() as b:
        first = [x.start_at for x in a.exec(select(m.Activity).order_by(col(m.Activity.id)))]
        second = [x.start_at for x in b.exec(select(m.Activity).order_by(col(m.Activity.id)))]
    assert len(first) == len(second)
    assert {later - earlier for earlier, later in zip(first, second, strict=True)} == {timedelta(days=7)}
