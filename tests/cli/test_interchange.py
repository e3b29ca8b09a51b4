"""Data in and out from the command line: CSV for every importable type and vCard for contacts survive an
export-then-import round trip; malformed files lose only their bad rows, each reported by line; duplicates are
merged or skipped; the calendar is iCalendar that icalendar reads back; a backup made while the database is
being written restores after an integrity check, keeping the replaced data aside."""

from __future__ import annotations

import sqlite3
import tarfile
import threading
from pathlib import Path
from typing import Any

import pytest
from icalendar import Calendar
from sqlalchemy import func, select
from sqlmodel import col

from crm_tui.cli.main import main
from crm_tui.core import models as m
from crm_tui.core.db import Database, open_database, sqlite_url
from crm_tui.core.services import custom_fields, pipelines, users
from tests.conftest import DEMO_NOW, NOW
from tests.utils.ids import id_of

ORDER = ("organizations", "contacts", "opportunities", "leads")


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _read(archive: tarfile.TarFile, member: str | tarfile.TarInfo) -> bytes:
    data = archive.extractfile(member)
    assert data is not None, f"{member} in the backup is not a file"
    return data.read()


def _database(home: Path) -> Database:
    return open_database(sqlite_url(home / "data" / "crm.sqlite3"))


def _home_with_me(tmp_path: Path) -> tuple[Path, Database]:
    """A home whose database has one user (me) and nothing else; its database, open."""
    home = tmp_path / "home"
    db = _database(home)
    with db.write() as s:
        users.create_user(s, users.UserInput(name="Anna Berg", email="anna@crm.example"), now=NOW)
    return home, db


def _fresh_home_like_demo(demo_home: Path, home: Path) -> None:
    """An empty database with the demo's users, pipelines and custom fields (what records refer to)."""
    demo = open_database(sqlite_url(demo_home / "data" / "demo.sqlite3"))
    target = _database(home)
    with demo.read() as source, target.write() as s:
        for user in source.scalars(select(m.User).order_by(col(m.User.id))):
            users.create_user(s, users.UserInput(name=user.name, email=user.email), now=NOW)
        for pipe in pipelines.pipelines(source):
            stages = [
                pipelines.StageInput(
                    st.name,
                    st.kind,
                    st.probability,
                    [x.name for x in pipelines.substates_of(source, id_of(st))],
                )
                for st in pipelines.stages_of(source, id_of(pipe))
            ]
            pipelines.create_pipeline(s, pipe.name, stages)
        for d in source.scalars(select(m.CustomFieldDefinition).order_by(col(m.CustomFieldDefinition.id))):
            custom_fields.define_field(s, custom_fields.FieldDefinitionInput(
                entity_type=d.entity_type, key=d.key, label=d.label, field_type=d.field_type,
                choices=(d.choices or "").splitlines() or None, required=d.required))  # fmt: skip
    demo.dispose()
    target.dispose()


def test_csv_round_trip_of_every_importable_type_loses_nothing(
    demo_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    for kind in ORDER:
        assert (
            cli(capsys, "--home", str(demo_home), "--demo", "export", kind, str(first / f"{kind}.csv"))[0]
            == 0
        )
    home = tmp_path / "fresh"
    _fresh_home_like_demo(demo_home, home)
    for kind in ORDER:
        code, out, err = cli(
            capsys, "--home", str(home), "--now", DEMO_NOW, "import", kind, str(first / f"{kind}.csv")
        )
        assert code == 0, err
        assert "0 rows with problems" in out
    for kind in ORDER:
        assert cli(capsys, "--home", str(home), "export", kind, str(second / f"{kind}.csv"))[0] == 0
        assert (second / f"{kind}.csv").read_text() == (first / f"{kind}.csv").read_text(), kind
    # Importing the same files again changes nothing: every row is a duplicate, merged into itself.
    code, out, _ = cli(capsys, "--home", str(home), "import", "contacts", str(first / "contacts.csv"))
    assert code == 0 and out.strip().endswith(
        "contacts: 0 created, 162 merged, 0 skipped, 0 rows with problems"
    )
    assert cli(capsys, "--home", str(home), "export", "contacts", str(second / "again.csv"))[0] == 0
    assert (second / "again.csv").read_text() == (first / "contacts.csv").read_text()


# Cells a spreadsheet would run as formulas (OWASP's CSV injection), and texts that already start with a quote.
HOSTILE: dict[str, Any] = {  # contact fields (ContactInput(**HOSTILE)), each a spreadsheet formula's start
    "first_name": '=HYPERLINK("http://x","y")', "last_name": "=cmd|' /C calc'!A0", "job_title": "@SUM(1+1)",
    "city": "-2+3+cmd|' /C calc'!A0", "street": "'=really starts with a quote", "region": "''+two quotes",
    "country": "'plain quote",
}  # fmt: skip


def _cells(path: Path) -> list[dict[str, str]]:
    import csv

    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_csv_export_cannot_run_formulas_and_reads_back_unchanged(
    demo_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from crm_tui.core.interchange.tables import FORMULA_START
    from crm_tui.core.services import contacts, opportunities, organizations

    home = tmp_path / "home"
    _fresh_home_like_demo(demo_home, home)
    db = _database(home)
    with db.write() as s:
        # Owned by me, as records made in the app are: an import gives a row without an owner to me too.
        me = s.scalars(select(col(m.User.id)).order_by(col(m.User.id))).first()
        org = organizations.create_organization(
            s, organizations.OrganizationInput(name="=1+1 GmbH", phone="+49 30 1234567", owner_id=me), now=NOW
        )
        person = contacts.create_contact(
            s, contacts.ContactInput(**HOSTILE, emails=["eve@evil.example"], phones=["+49 170 1234567", "-1 555"],
                                     organization_id=org.id, owner_id=me), now=NOW,
        )  # fmt: skip
        sales = s.scalars(select(m.Pipeline).where(col(m.Pipeline.name) == "Sales")).one()
        opportunities.create_opportunity(
            s, opportunities.OpportunityInput(title="+Rabatt", pipeline_id=id_of(sales), amount_cents=1250000,
                                              organization_id=org.id, contact_ids=[id_of(person)],
                                              custom={"roof_area_m2": -5}, owner_id=me), now=NOW, user_id=None,
        )  # fmt: skip
    db.dispose()
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    for kind in ORDER:
        assert cli(capsys, "--home", str(home), "export", kind, str(first / f"{kind}.csv"))[0] == 0
    [eve] = [row for row in _cells(first / "contacts.csv") if row["emails"] == "eve@evil.example"]
    assert {key: eve[key] for key in HOSTILE} == {
        "first_name": "'=HYPERLINK(\"http://x\",\"y\")", "last_name": "'=cmd|' /C calc'!A0",
        "job_title": "'@SUM(1+1)", "city": "'-2+3+cmd|' /C calc'!A0",
        "street": "''=really starts with a quote", "region": "'''+two quotes", "country": "'plain quote",
    }  # fmt: skip
    assert eve["phones"] == "'+49 170 1234567; -1 555"
    assert eve["organization"] == "'=1+1 GmbH"
    [deal] = [row for row in _cells(first / "opportunities.csv") if row["organization"] == "'=1+1 GmbH"]
    assert (deal["title"], deal["amount"], deal["custom.roof_area_m2"]) == ("'+Rabatt", "12500.00", "-5")
    assert ",12500.00,EUR," in (first / "opportunities.csv").read_text()  # a number: not quoted, no '
    # No text cell of any file starts a formula; numbers are numbers.
    for kind in ORDER:
        for row in _cells(first / f"{kind}.csv"):
            for column, cell in row.items():
                if column not in ("amount", "custom.roof_area_m2"):
                    assert cell[:1] not in FORMULA_START, (kind, column, cell)
    # Read back into an empty database: the same texts, and the same files when written again.
    again = tmp_path / "again"
    _fresh_home_like_demo(demo_home, again)
    for kind in ORDER:
        code, out, err = cli(capsys, "--home", str(again), "import", kind, str(first / f"{kind}.csv"))
        assert code == 0 and "0 rows with problems" in out, err
    for kind in ORDER:
        assert cli(capsys, "--home", str(again), "export", kind, str(second / f"{kind}.csv"))[0] == 0
        assert (second / f"{kind}.csv").read_text() == (first / f"{kind}.csv").read_text(), kind
    db = _database(again)
    with db.read() as s:
        eve_again = contacts.find_by_email(s, "eve@evil.example")[0]
        assert {key: getattr(eve_again, key) for key in HOSTILE} == HOSTILE
        assert contacts.contact_phones(s, id_of(eve_again)) == ["+49 170 1234567", "-1 555"]
        deal_again = s.scalars(select(m.Opportunity).where(col(m.Opportunity.title) == "+Rabatt")).one()
        assert deal_again.amount_cents == 1250000
    db.dispose()


def test_a_cell_that_would_start_a_formula_gets_one_quote_that_reading_takes_off() -> None:
    from crm_tui.core.interchange.tables import from_spreadsheet, spreadsheet_cell

    written = {
        "\tx": "'\tx", "\rx": "'\rx", "'\tx": "''\tx", "=": "'=", "'": "'", "''": "''", "": "", "a=b": "a=b",
        "'quoted": "'quoted", "-5": "'-5", "@": "'@", "''-": "'''-",
    }  # fmt: skip
    for value, cell in written.items():
        assert spreadsheet_cell(value) == cell, value
        assert from_spreadsheet(cell) == value, value
    # In a column of numbers a number is written as it is; anything else there is text like any other.
    assert [spreadsheet_cell(v, number=True) for v in ("-5", "12500.00", "-1+1", "=1")] == ["-5", "12500.00",
                                                                                          "'-1+1", "'=1"]  # fmt: skip
    # A spreadsheet user's own quote before a formula character is taken off too; elsewhere it stays.
    assert [from_spreadsheet(c) for c in ("'+49 30 1", "'0049", "it's")] == ["+49 30 1", "'0049", "it's"]


def test_vcard_round_trip_and_organizations_made_on_the_way(
    demo_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        cli(capsys, "--home", str(demo_home), "--demo", "export", "contacts", str(tmp_path / "all.vcf"))[0]
        == 0
    )
    assert (
        cli(capsys, "--home", str(demo_home), "--demo", "export", "contacts", str(tmp_path / "before.csv"))[0]
        == 0
    )
    home = tmp_path / "fresh"
    _fresh_home_like_demo(demo_home, home)
    code, out, err = cli(capsys, "--home", str(home), "import", "contacts", str(tmp_path / "all.vcf"))
    assert code == 0, err
    assert "162 created" in out and "new organizations" in out
    assert cli(capsys, "--home", str(home), "export", "contacts", str(tmp_path / "after.csv"))[0] == 0
    assert (tmp_path / "after.csv").read_text() == (tmp_path / "before.csv").read_text()


VCARDS = """BEGIN:VCARD\r
VERSION:4.0\r
N:Roth;Jana;;;\r
FN:Jana Roth\r
ORG:Neu Solar GmbH;Vertrieb\r
EMAIL;TYPE=work;PREF=1:jana.roth@neu-solar.example\r
EMAIL;TYPE=home:jana@roth.example\r
TEL;TYPE=cell:tel:+49 170 1234567\r
TEL;TYPE=work:+49 89 555 0100\r
ADR;TYPE=work:;;Sonnenstr. 5;München;Bayern;80331;DE\r
END:VCARD\r
BEGIN:VCARD\r
VERSION:2.1\r
N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:M=C3=BCller;J=C3=BCrgen\r
EMAIL;INTERNET:juergen@mueller.example\r
END:VCARD\r
BEGIN:VCARD\r
VERSION:3.0\r
NOTE:no name and no address\r
END:VCARD\r
BEGIN:VCARD\r
VERSION:3.0\r
FN:Cut Off\r
"""


def test_vcard_3_and_4_with_several_addresses_and_phones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    path = tmp_path / "cards.vcf"
    path.write_text(VCARDS, encoding="utf-8", newline="")
    code, out, err = cli(capsys, "--home", str(home), "import", "contacts", str(path), "--preview")
    assert code == 1
    assert (
        "line 17: a card without a name or an address" in err and "line 21: the card has no END:VCARD" in err
    )
    assert "2 would be created" in out and "preview: nothing was written" in out
    db = _database(home)
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(m.Contact)) == 0
    db.dispose()
    code, out, err = cli(capsys, "--home", str(home), "import", "contacts", str(path))
    assert code == 1 and "2 created" in out
    db = _database(home)
    with db.read() as s:
        jana = s.scalars(select(m.Contact).where(col(m.Contact.last_name) == "Roth")).one()
        emails = list(
            s.scalars(
                select(col(m.ContactEmail.address))
                .where(col(m.ContactEmail.contact_id) == jana.id)
                .order_by(col(m.ContactEmail.position))
            )
        )
        phones = list(
            s.scalars(
                select(col(m.ContactPhone.number))
                .where(col(m.ContactPhone.contact_id) == jana.id)
                .order_by(col(m.ContactPhone.position))
            )
        )
        org = s.get(m.Organization, jana.organization_id)
        assert emails == ["jana.roth@neu-solar.example", "jana@roth.example"]
        assert phones == ["+49 170 1234567", "+49 89 555 0100"]
        assert org is not None and org.name == "Neu Solar GmbH"
        assert (jana.street, jana.city, jana.postcode, jana.region, jana.country) == (
            "Sonnenstr. 5",
            "München",
            "80331",
            "Bayern",
            "DE",
        )
        assert (
            s.scalars(select(col(m.Contact.first_name)).where(col(m.Contact.last_name) == "Müller")).one()
            == "Jürgen"
        )
    db.dispose()


def test_bad_rows_are_reported_by_line_and_the_rest_imported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home, db = _home_with_me(tmp_path)
    db.dispose()
    path = tmp_path / "leute.csv"
    # Semicolons and Windows-1252, as a spreadsheet in Germany writes them; Vorname/Nachname/E-Mail mapped.
    text = (
        "Vorname;Nachname;E-Mail;owner;mail_opt_out;Notiz\r\n"
        "Jörg;Kraus;joerg@kraus.example;anna@crm.example;nein;x\r\n"
        "Eva;Lang;not-an-address;;;\r\n"
        "Olaf;Brand;olaf@brand.example;nobody@crm.example;;\r\n"
        "Ute;Stein;ute@stein.example;;vielleicht;\r\n"
        "Kai;Roth;kai@roth.example;;;;too;many\r\n"
        "Ina;Sommer;ina@sommer.example;;ja;\r\n"
    )
    path.write_bytes(text.replace("nein", "no").replace(";ja;", ";yes;").encode("cp1252"))
    code, out, err = cli(
        capsys, "--home", str(home), "import", "contacts", str(path),
        "--map", "Vorname=first_name", "--map", "Nachname=last_name", "--map", "E-Mail=emails",
    )  # fmt: skip
    assert code == 1
    assert "ignored columns" in out and "Notiz" in out
    problems = err.strip().splitlines()
    assert problems[0].startswith("line 3: ") and "not-an-address" in problems[0]
    assert problems[1] == "line 4: owner: no user with the address 'nobody@crm.example'"
    assert problems[2] == "line 5: mail_opt_out: 'vielleicht' is not yes or no"
    assert problems[3] == "line 6: 8 cells, but the header names 6 columns"
    assert "2 created" in out and "4 rows with problems" in out
    db = _database(home)
    with db.read() as s:
        names = sorted((c.first_name, c.last_name, c.mail_opt_out) for c in s.scalars(select(m.Contact)))
    db.dispose()
    assert names == [("Ina", "Sommer", True), ("Jörg", "Kraus", False)]
    # Again with skip: both are duplicates (by address) and left alone.
    code, out, _ = cli(capsys, "--home", str(home), "import", "contacts", str(path), "--on-duplicate", "skip",
                       "--map", "Vorname=first_name", "--map", "Nachname=last_name", "--map", "E-Mail=emails")  # fmt: skip
    assert "0 created, 0 merged, 2 skipped" in out


def test_unreadable_files_say_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code, _, err = cli(capsys, "--home", str(home), "import", "organizations", str(empty))
    assert code == 1 and "line 1: the file is empty" in err
    code, _, err = cli(capsys, "--home", str(home), "import", "organizations", str(tmp_path / "missing.csv"))
    assert code == 1 and "does not exist" in err
    cards = tmp_path / "x.vcf"
    cards.write_text(VCARDS, encoding="utf-8")
    code, _, err = cli(capsys, "--home", str(home), "import", "leads", str(cards))
    assert code == 2 and "vCard files hold contacts" in err
    code, _, err = cli(capsys, "--home", str(home), "export", "leads", str(tmp_path / "leads.vcf"))
    assert code == 2 and "only contacts are written as vCard" in err


def _import(capsys: pytest.CaptureFixture[str], home: Path, path: Path, *more: str) -> tuple[int, str, str]:
    return cli(capsys, "--home", str(home), "import", "contacts", str(path), *more)


def _people(home: Path) -> list[str]:
    db = _database(home)
    with db.read() as s:
        names = sorted(f"{c.first_name} {c.last_name}" for c in s.scalars(select(m.Contact)))
    db.dispose()
    return names


def _counts(out: str) -> int:
    """The rows a summary line accounts for: created, merged, skipped and those with problems."""
    import re

    summary = out.strip().splitlines()[-1]
    return sum(
        int(n)
        for n in re.findall(r"(\d+) (?:would be )?(?:created|merged|skipped|rows? with problems)", summary)
    )


def test_an_unclosed_quote_loses_only_its_own_row_and_every_row_is_accounted_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A quote left open swallowed every row after it without a word ("1 created", exit 0)."""
    home = tmp_path / "home"
    rows = [f"Name{n},Person{n},p{n}@example.org" for n in range(1, 9)]
    anna = 'Anna,"Alt,anna@alt.example'
    cases = {  # name: (the rows after the header, the line reported and why, the rows read)
        # The quote is never closed: everything after it was one cell.
        "never-closed.csv": ([*rows[:2], anna, *rows[2:]], {4: "never closed"}, 8),
        # It closes at the next quoted cell, three rows on: the rows between were in one cell.
        "closed-later.csv": (
            [*rows[:2], anna, *rows[2:4], 'Cara,"Conrad",cara@c.example', *rows[4:]],
            {4: "goes on after its closing quote"}, 9,
        ),
        # It closes at a quote that ends a line: two lines read as one row of too few cells, reported as such.
        "closed-at-an-end.csv": (
            [*rows[:2], anna, 'Ben,Bauer,ben@bauer.example"', *rows[2:]],
            {4: "lines 4 to 5 were read as one row of 2 cells"}, 8,
        ),
    }  # fmt: skip
    for name, (lines, problems, read) in cases.items():
        path = tmp_path / name
        path.write_text("first_name,last_name,emails\r\n" + "\r\n".join(lines) + "\r\n", encoding="utf-8")
        code, out, err = _import(capsys, home, path, "--preview")
        assert code == 1, name
        reported = dict(line.split(": ", 1) for line in err.strip().splitlines())
        assert {int(k.removeprefix("line ")) for k in reported} == set(problems), (name, err)
        for line, words in problems.items():
            assert words in reported[f"line {line}"], (name, err)
        assert f"{read} would be created" in out and "1 row with problems" in out, (name, out)
        listed = [int(line.split()[1]) for line in out.splitlines() if line.startswith("line ")]
        # Every line is a row created or reported (the one that closes the quote with the row it belongs to).
        assert len(listed) == read and set(listed).isdisjoint(problems), name
        assert _counts(out) == read + len(problems) == len(lines) - (name == "closed-at-an-end.csv"), name
    code, out, err = _import(capsys, home, tmp_path / "never-closed.csv")
    assert code == 1 and "8 created" in out
    assert _people(home) == sorted(f"Name{n} Person{n}" for n in range(1, 9))


def test_utf16_and_utf8_with_a_byte_order_mark_are_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A spreadsheet's "Unicode text" is UTF-16 with a BOM: it was read as Windows-1252, its header unknown."""
    home = tmp_path / "home"
    text = "first_name;last_name;emails;city\r\nJörg;Kraus;joerg@kraus.example;Köln\r\nŞule;Öztürk;sule@oe.example;İzmir\r\n"
    encodings = {
        "utf-16-le.csv": b"\xff\xfe" + text.encode("utf-16-le"),
        "utf-16-be.csv": b"\xfe\xff" + text.encode("utf-16-be"),
        "utf-8-bom.csv": text.encode("utf-8-sig"),
        "utf-16-no-bom.csv": text.encode("utf-16-le"),
        "utf-32.csv": text.encode("utf-32"),
    }
    for name, data in encodings.items():
        (tmp_path / name).write_bytes(data)
        code, out, err = _import(capsys, home, tmp_path / name, "--preview")
        assert (code, err) == (0, ""), name
        assert "ignored columns" not in out and "2 would be created" in out, (name, out)
    code, out, _ = _import(capsys, home, tmp_path / "utf-16-le.csv")
    db = _database(home)
    with db.read() as s:
        assert sorted((c.first_name, c.last_name, c.city) for c in s.scalars(select(m.Contact))) == [
            ("Jörg", "Kraus", "Köln"), ("Şule", "Öztürk", "İzmir"),
        ]  # fmt: skip
    db.dispose()
    # Cut off in the middle of a character, or no text at all: said so, nothing imported.
    (tmp_path / "cut.csv").write_bytes(encodings["utf-16-le.csv"][:-1])
    code, out, err = _import(capsys, home, tmp_path / "cut.csv")
    assert (code, out) == (1, "") and "starts as UTF-16 text, but byte" in err
    (tmp_path / "book.csv").write_bytes(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00" * 20)
    code, out, err = _import(capsys, home, tmp_path / "book.csv")
    assert (code, out) == (1, "") and err == (
        f"crm-tui: {tmp_path / 'book.csv'} is not a text file (a spreadsheet's own format? save it as CSV)\n"
    )


def test_a_vcf_that_is_no_vcard_is_refused_and_stray_lines_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A CSV named .vcf was "0 created" with exit 0."""
    home = tmp_path / "home"
    path = tmp_path / "contacts.vcf"
    path.write_text("first_name,last_name,emails\r\nJörg,Kraus,joerg@kraus.example\r\n", encoding="utf-8")
    code, out, err = _import(capsys, home, path)
    assert (code, out) == (1, "")
    assert err == f"crm-tui: {path} is not a vCard file: no BEGIN:VCARD in it (a CSV file? name it .csv)\n"
    path.write_text("")
    code, out, err = _import(capsys, home, path)
    assert (code, out, err) == (1, "", f"crm-tui: {path} is empty\n")
    # A card cut off by the next one, and lines outside any card: each reported by its line, the rest read.
    path.write_text(
        "some note\r\nmore of it\r\nBEGIN:VCARD\r\nVERSION:3.0\r\nFN:Cut Short\r\nBEGIN:VCARD\r\nVERSION:3.0\r\n"
        "FN:Ina Sommer\r\nEMAIL:ina@sommer.example\r\nEND:VCARD\r\ntrailing words\r\n",
        encoding="utf-8",
    )
    code, out, err = _import(capsys, home, path)
    assert code == 1 and "1 created" in out and "3 rows with problems" in out
    assert err.splitlines() == [
        "line 1: lines 1 to 2 are outside any card (BEGIN:VCARD ... END:VCARD)",
        "line 3: the card has no END:VCARD (the next card begins first)",
        "line 11: line 11 is outside any card (BEGIN:VCARD ... END:VCARD)",
    ]
    # A vCard named .csv is read as one.
    csv_named = tmp_path / "cards.csv"
    csv_named.write_text("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Olaf Brand\r\nEND:VCARD\r\n", encoding="utf-8")
    code, out, err = _import(capsys, home, csv_named)
    assert (code, err) == (0, "") and "1 created" in out


def test_calendar_export_reads_back(
    demo_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cal.ics"
    code, out, _ = cli(
        capsys,
        "--home",
        str(demo_home),
        "--demo",
        "export",
        "calendar",
        str(path),
        "--owner",
        "anna.berg@example.com",
    )
    assert code == 0
    calendar = Calendar.from_ical(path.read_bytes())
    events = list(calendar.walk("VEVENT"))
    db = open_database(sqlite_url(demo_home / "data" / "demo.sqlite3"))
    with db.read() as s:
        anna = s.scalars(select(m.User).where(col(m.User.email) == "anna.berg@example.com")).one()
        mine = list(
            s.scalars(
                select(m.Activity)
                .where(col(m.Activity.owner_id) == anna.id)
                .order_by(col(m.Activity.start_at), col(m.Activity.id))
            )
        )
    db.dispose()
    assert out.startswith(f"{len(mine)} activities written") and len(events) == len(mine) > 0
    for event, activity in zip(events, mine, strict=True):
        assert str(event["uid"]) == f"activity-{activity.id}@crm-tui"
        assert str(event["summary"]) == activity.subject
        assert event.decoded("dtstart") == activity.start_at
        assert str(event["organizer"]) == "mailto:anna.berg@example.com"
        assert str(event["status"]) == ("CANCELLED" if activity.status == "cancelled" else "CONFIRMED")


def test_backup_while_writing_then_restore_after_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home, db = _home_with_me(tmp_path)
    doc = tmp_path / "angebot.pdf"
    doc.write_bytes(b"%PDF-1.4 offer")
    from crm_tui.core.services import attachments
    from crm_tui.core.types import RecordRef, RecordType
    from tests.utils import factories

    with db.write() as s:
        contact = factories.contact(s, NOW, "Kept", emails=["kept@example.com"])
        attachments.add_document(s, RecordRef(RecordType.CONTACT, id_of(contact)), doc,
                                 store=attachments.FileStore(home / "data" / "documents"), added_by_id=None, now=NOW)  # fmt: skip
    stop = threading.Event()

    def writer() -> None:  # another crm-tui writing all the while
        n = 0
        while not stop.is_set():
            with db.write() as s:
                factories.contact(s, NOW, f"Busy{n}")
            n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        code, out, err = cli(capsys, "--home", str(home), "backup", str(tmp_path / "crm.backup"))
    finally:
        stop.set()
        thread.join()
    assert code == 0, err
    assert "backup written to" in out and "1 document" in out and "1 documents" not in out
    with db.write() as s:
        factories.contact(s, NOW, "AfterBackup")
    db.dispose()
    # A damaged copy is refused and nothing changes.
    damaged = tmp_path / "damaged.backup"
    with tarfile.open(tmp_path / "crm.backup") as source, tarfile.open(damaged, "w") as target:
        for member in source.getmembers():
            data = _read(source, member)
            if member.name == "crm.sqlite3":
                data = data[:4096] + bytes(b ^ 0xFF for b in data[4096:4200]) + data[4200:]
            import io

            target.addfile(member, io.BytesIO(data))
    code, _, err = cli(capsys, "--home", str(home), "restore", str(damaged), "--yes")
    assert code == 1 and "damaged" in err
    code, out, err = cli(capsys, "--home", str(home), "restore", str(tmp_path / "crm.backup"), "--yes")
    assert code == 0, err
    assert "checked: intact" in out and "restored; the data it replaced is in" in out
    db = _database(home)
    with db.read() as s:
        names = set(s.scalars(select(col(m.Contact.last_name))))
        [document] = s.scalars(select(m.Document)).all()
    db.dispose()
    assert "Kept" in names and "AfterBackup" not in names
    assert (
        home / "data" / "documents" / document.stored_name[:2] / document.stored_name
    ).read_bytes() == b"%PDF-1.4 offer"
    [aside] = list((home / "data" / "replaced").iterdir())
    kept = sqlite3.connect(aside / "crm.sqlite3")
    assert ("AfterBackup",) in kept.execute("SELECT last_name FROM contact").fetchall()
    kept.close()


EXPORTED = ("organizations", "contacts", "opportunities", "leads", "activities", "tickets")


def _exports(capsys: pytest.CaptureFixture[str], folder: Path, *where: str) -> dict[str, str]:
    folder.mkdir()
    result = {}
    for kind in (*EXPORTED, "calendar"):
        name = folder / (f"{kind}.ics" if kind == "calendar" else f"{kind}.csv")
        code, _, err = cli(capsys, *where, "--now", DEMO_NOW, "export", kind, str(name))
        assert code == 0, err
        result[kind] = name.read_text()
    return result


def test_a_shared_database_is_backed_up_while_written_and_restored_into_either_kind(
    demo_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], postgres_urls: Any
) -> None:
    """Team mode's backup: the local demo (with a 2.5 MiB document) moves onto a PostgreSQL server through a
    backup; a backup of that server, taken while someone writes, restores into the server (after a damaged
    copy was refused) and into a local SQLite home. Every export is identical at each step, the document
    reads back byte for byte, and the replaced data is kept as a backup of its own."""
    import io
    import json
    import os

    from crm_tui.core.services import attachments
    from crm_tui.core.types import RecordRef, RecordType
    from crm_tui.runtime.paths import resolve_paths
    from tests.utils import factories

    demo = ("--home", str(demo_home), "--demo")
    content = os.urandom(2 * 2**20 + 2**19)
    (tmp_path / "site-plan.pdf").write_bytes(content)
    local = open_database(sqlite_url(demo_home / "data" / "demo.sqlite3"))
    with local.write() as s:
        first = s.scalars(select(m.Contact).order_by(col(m.Contact.id))).first()
        assert first is not None
        attachments.add_document(s, RecordRef(RecordType.CONTACT, id_of(first)), tmp_path / "site-plan.pdf",
                                 store=attachments.FileStore(resolve_paths(demo_home).documents_dir(demo=True)),
                                 added_by_id=None, now=NOW)  # fmt: skip
    local.dispose()
    expected = _exports(capsys, tmp_path / "local", *demo)
    code, _, err = cli(capsys, *demo, "backup", str(tmp_path / "local.backup"))
    assert code == 0, err

    # Local to team: the SQLite backup restored into an empty PostgreSQL database.
    url = postgres_urls()
    team = ("--home", str(tmp_path / "team-home"), "--db", url)
    code, out, err = cli(capsys, *team, "restore", str(tmp_path / "local.backup"), "--yes")
    assert code == 0, err
    assert "restored into postgresql" in out
    assert _exports(capsys, tmp_path / "team", *team) == expected
    shared = open_database(url)
    store = attachments.store_for(shared, tmp_path / "unused")
    with shared.read() as s:
        [document] = s.scalars(select(m.Document)).all()
        assert store.read(s, document.stored_name) == content
        shared_counts = {
            table: s.scalars(select(func.count()).select_from(getattr(m, model))).one()
            for table, model in (("contact", "Contact"), ("activity", "Activity"), ("user", "User"))
        }

    # A backup while another instance writes: one snapshot.
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        while not stop.is_set():
            with shared.write() as s:
                factories.contact(s, NOW, f"Busy{len(written)}")
            written.append(1)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        code, out, err = cli(capsys, *team, "backup", str(tmp_path / "team.backup"))
    finally:
        stop.set()
        thread.join()
    assert code == 0, err
    assert "backup written to" in out and "1 document" in out and "1 documents" not in out and written
    with shared.write() as s:
        factories.contact(s, NOW, "AfterBackup")
    with tarfile.open(tmp_path / "team.backup") as archive:
        manifest = json.loads(_read(archive, "manifest.json"))
    in_backup = manifest["tables"]["contact"]["rows"]
    assert shared_counts["contact"] <= in_backup <= shared_counts["contact"] + len(written)

    # A damaged copy is refused before anything changes.
    damaged = tmp_path / "damaged.backup"
    with tarfile.open(tmp_path / "team.backup") as source, tarfile.open(damaged, "w") as target:
        for member in source.getmembers():
            data = _read(source, member)
            if member.name == "tables/contact.jsonl":
                data = data.replace(b"Busy", b"Bust", 1)
            target.addfile(member, io.BytesIO(data))
    code, _, err = cli(capsys, *team, "restore", str(damaged), "--yes")
    assert code == 1 and "damaged" in err
    with shared.read() as s:
        assert (
            s.scalar(
                select(func.count()).select_from(m.Contact).where(col(m.Contact.last_name) == "AfterBackup")
            )
            == 1
        )

    code, out, err = cli(capsys, *team, "restore", str(tmp_path / "team.backup"), "--yes")
    assert code == 0, err
    restored_team = _exports(capsys, tmp_path / "team-restored", *team)
    assert restored_team["organizations"] == expected["organizations"]
    with shared.read() as s:
        names = list(s.scalars(select(col(m.Contact.last_name))))
    assert "AfterBackup" not in names and len(names) == in_backup
    with shared.write() as s:  # the id sequences moved past the restored rows
        after = id_of(factories.contact(s, NOW, "AfterRestore"))
        before = s.scalars(
            select(func.max(col(m.Contact.id))).where(col(m.Contact.last_name) != "AfterRestore")
        ).one()
        assert before is not None and after > before
    first_aside, aside = sorted((tmp_path / "team-home" / "data" / "replaced").iterdir())
    with tarfile.open(first_aside / "replaced.crm-backup") as kept:  # the empty database it started as
        assert _read(kept, "tables/contact.jsonl") == b""
    with tarfile.open(aside / "replaced.crm-backup") as kept:
        assert b'"AfterBackup"' in _read(kept, "tables/contact.jsonl")
    shared.dispose()

    # Team to local: the server's backup as a SQLite home, documents as files again.
    home = ("--home", str(tmp_path / "laptop"))
    code, out, err = cli(capsys, *home, "restore", str(tmp_path / "team.backup"), "--yes")
    assert code == 0, err
    assert _exports(capsys, tmp_path / "laptop-exports", *home) == restored_team
    code, out, err = cli(capsys, *home, "search", '"Fotos vom Dach"', "--json")
    assert code == 0 and len(json.loads(out)) >= 3, "the full-text index was filled as the rows went in"
    restored = _database(tmp_path / "laptop")
    with restored.read() as s:
        [document] = s.scalars(select(m.Document)).all()
        assert (
            attachments.FileStore(tmp_path / "laptop" / "data" / "documents").read(s, document.stored_name)
            == content
        )
        assert s.scalar(select(func.count()).select_from(m.Contact)) == in_backup
        assert s.scalar(select(func.count()).select_from(m.DocumentContent)) == 0
    restored.dispose()
