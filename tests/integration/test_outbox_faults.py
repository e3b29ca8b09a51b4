"""The outbox under faults (issue 21, items 1, 2 and the reused ids of 10), each against the real parts: a
Dovecot whose Sent folder is "Versendete Elemente", marked \\Sent (RFC 6154) and made only when a test makes
it (until then the user has no Sent folder at all), aiosmtpd refusing one recipient at RCPT, a flush process
killed with SIGKILL once the server had the mail, a Maildir the server cannot make a folder in.

Nothing about one item stops the queue; an item a dead process left "sending" can be decided; a recipient the
server refused is named with the server's reply and gets the mail again, alone, with the same Message-ID."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import subprocess
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from crm_tui.core import models as m
from crm_tui.core.services import mail_accounts, outbox
from crm_tui.mail import compose
from tests.conftest import NOW
from tests.integration import dovecot as dovecot_module
from tests.integration.conftest import ON_BOTH, Mailbox
from tests.integration.proxy import Link, Proxy
from tests.integration.smtp import SmtpServer
from tests.integration.test_outbox import BODY, flush_at, flush_in_a_process, queue_mail
from tests.integration.test_triage import server_subjects
from tests.utils.ids import id_of


@pytest.fixture(scope="module")
def dovecot() -> Iterator[dovecot_module.Dovecot]:
    """This module's Dovecot: its \\Sent folder is MARKED, and nobody has one until it is made."""
    server = dovecot_module.start(sent=dovecot_module.SENT_ELSEWHERE)
    yield server
    server.stop()


def folders(box: Mailbox) -> dict[str, set[str]]:
    client = box.imap()
    try:
        return {
            str(name): {(f.decode() if isinstance(f, bytes) else str(f)) for f in flags}
            for flags, _, name in client.list_folders()
        }
    finally:
        client.logout()


MARKED = dovecot_module.SENT_ELSEWHERE_NAME  # the folder this server marks \Sent


def make_marked_sent(box: Mailbox) -> None:
    client = box.imap()
    try:
        client.create_folder(MARKED)
    finally:
        client.logout()


def listing(box: Mailbox, capsys: pytest.CaptureFixture[str]) -> dict[int, dict[str, Any]]:
    capsys.readouterr()
    assert box.cli("outbox", "list", "--json") == 0
    return {item["id"]: item for item in json.loads(capsys.readouterr().out)}


def said(box: Mailbox, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = box.cli(*argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@ON_BOTH
def test_without_a_sent_folder_a_send_killed_after_the_server_took_it_never_sticks_the_queue(
    mailbox: Mailbox, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The trial's fault: the flush killed once the server had the mail, on a server with no Sent folder;
    every later flush ended in 'internal error: select failed: Mailbox doesn't exist: Sent' and the mail
    behind it never left."""
    assert MARKED not in folders(mailbox) and "Sent" not in folders(mailbox)
    first, _ = queue_mail(mailbox, subject="Angebot")
    second, _ = queue_mail(mailbox, subject="Rechnung")
    process = flush_in_a_process(mailbox)
    smtp.behaviour.kill_pid, smtp.behaviour.kill_at = process.pid, "data"
    assert process.wait(timeout=60) == -9
    assert len(smtp.received) == 1
    items = listing(mailbox, capsys)
    assert items[first]["state"] == "sending" and items[first]["shown_state"] == "sending, cut off"
    assert items[first]["needs_decision"] and items[second]["state"] == "queued"

    code, out = said(mailbox, capsys, "--now", (NOW).isoformat(), "outbox", "flush")
    assert code == 1 and "internal error" not in out
    assert "1 sent" in out and "1 uncertain" in out
    items = listing(mailbox, capsys)
    assert items[first]["state"] == "uncertain"
    assert "has no Sent folder to look in" in items[first]["error"]
    assert items[second]["state"] == "sent", "the mail queued behind it went out"
    assert [r[2] for r in smtp.received][1].find(b"Subject: Rechnung") >= 0
    assert "Sent" in folders(mailbox), "a Sent folder was made for the copy"
    assert server_subjects(mailbox, "Sent") == {"Rechnung"}
    code, out = said(mailbox, capsys, "outbox", "list")
    assert f"outbox decide {first} resend|sent|drop" in out

    code, out = said(mailbox, capsys, "outbox", "decide", str(first), "sent")
    assert code == 0 and "counted as sent" in out
    assert listing(mailbox, capsys)[first]["state"] == "sent"
    assert flush_at(mailbox, 30) == 0 and len(smtp.received) == 2, "each mail went out once"


def test_an_item_a_dead_process_left_sending_can_be_decided_one_a_live_one_delivers_cannot(
    mailbox: Mailbox, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    make_marked_sent(mailbox)
    item_id, _ = queue_mail(mailbox)
    process = flush_in_a_process(mailbox)
    smtp.behaviour.kill_pid, smtp.behaviour.kill_at = process.pid, "rcpt"  # before the server had it
    assert process.wait(timeout=60) == -9
    assert listing(mailbox, capsys)[item_id]["state"] == "sending"
    # The same item, as if a running process were delivering it: not to be touched.
    alive = subprocess.Popen(["sleep", "60"])
    try:
        db = mailbox.database()
        with db.write() as session:
            session.get_one(m.OutboxItem, item_id).claimed_by = f"{socket.gethostname()}:{alive.pid}"
        db.dispose()
        code, out = said(mailbox, capsys, "outbox", "decide", str(item_id), "resend")
        assert code != 0 and "being delivered right now" in out and "internal error" not in out
        assert not listing(mailbox, capsys)[item_id]["needs_decision"]
    finally:
        alive.kill()
        alive.wait()
    code, out = said(mailbox, capsys, "outbox", "decide", str(item_id), "resend")
    assert code == 0 and "queued again for jana.roth@neu-solar.example" in out
    assert flush_at(mailbox, 1) == 0
    assert len(smtp.received) == 1 and listing(mailbox, capsys)[item_id]["state"] == "sent"
    assert server_subjects(mailbox, MARKED) == {"Angebot"}


def test_the_copy_goes_to_the_folder_marked_sent_whatever_its_name(
    mailbox: Mailbox, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    make_marked_sent(mailbox)
    client = mailbox.imap()
    client.create_folder("Sent")  # a folder called so, but not the one the server marks
    client.logout()
    assert "\\Sent" in folders(mailbox)[MARKED] and "\\Sent" not in folders(mailbox)["Sent"]
    item_id, _ = queue_mail(mailbox, subject="Angebot")
    assert flush_at(mailbox) == 0
    assert server_subjects(mailbox, MARKED) == {"Angebot"}
    assert server_subjects(mailbox, "Sent") == set(), "the marked folder, not the one named Sent"
    # A send cut off after the server took it and the provider filed it: found in the marked folder.
    later, _ = queue_mail(mailbox, subject="Nachtrag")

    def provider_files_it(raw: bytes) -> None:
        mailbox.append(MARKED, raw, flags=("\\Seen",))

    process = flush_in_a_process(mailbox)
    smtp.behaviour.kill_pid, smtp.behaviour.kill_at, smtp.behaviour.file_in = (
        process.pid,
        "data",
        provider_files_it,
    )
    assert process.wait(timeout=60) == -9
    code, out = said(mailbox, capsys, "--now", NOW.isoformat(), "outbox", "flush")
    assert code == 0 and "1 found in Sent" in out
    assert listing(mailbox, capsys)[later]["state"] == "sent" and len(smtp.received) == 2


def test_when_no_sent_folder_can_be_made_the_mail_is_sent_without_a_copy_and_the_queue_goes_on(
    mailbox: Mailbox, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    client = mailbox.imap()
    client.select_folder("INBOX")  # the user's Maildir exists once INBOX was opened
    client.logout()
    maildir = mailbox.server.root / "mail" / mailbox.user / "Maildir"
    assert maildir.is_dir()
    mode = maildir.stat().st_mode
    maildir.chmod(0o555)  # the server (not root) can make no folder in it
    try:
        first, _ = queue_mail(mailbox, subject="Angebot")
        second, _ = queue_mail(mailbox, subject="Rechnung")
        code, out = said(mailbox, capsys, "--now", NOW.isoformat(), "outbox", "flush")
        assert code == 1 and "internal error" not in out
        assert "2 sent" in out and "no copy saved in Sent" in out
        assert "did not let us make one" in out
        items = listing(mailbox, capsys)
        for item_id in (first, second):
            assert items[item_id]["state"] == "sent"
            assert items[item_id]["shown_state"] == "sent, no copy saved"
            assert items[item_id]["error"].startswith("no copy saved in Sent (the server has no Sent folder")
            assert not items[item_id]["needs_decision"]
        assert len(smtp.received) == 2
        assert "Sent" not in folders(mailbox)
    finally:
        maildir.chmod(mode & 0o7777)
    assert flush_at(mailbox, 10) == 0 and len(smtp.received) == 2, "nothing goes out twice"


def queue_from_a_contact(box: Mailbox, to: list[str], subject: str) -> tuple[int, int, str]:
    raw, message_id, recipients = compose.build(
        compose.Draft(
            "Anna Berg", "anna@crm.example", to=compose.addresses(", ".join(to)), subject=subject, body=BODY
        ),
        now=NOW,
    )
    from tests.utils import factories

    db = box.database()
    with db.write() as session:
        person = factories.contact(session, NOW, "Roth", first_name="Jana", emails=[to[0]])
        account = mail_accounts.get_account(session, "work")
        item = outbox.queue(
            session, account_id=id_of(account), message_id=message_id, from_address="anna@crm.example",
            recipients=recipients, subject=subject, raw=raw, now=NOW, record=("contact", id_of(person)),
        )  # fmt: skip
        ids = id_of(item), id_of(person)
    db.dispose()
    return ids[0], ids[1], message_id


@ON_BOTH
def test_one_recipient_refused_at_rcpt_is_named_and_gets_it_again_alone_with_the_same_message_id(
    mailbox: Mailbox, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    make_marked_sent(mailbox)
    to = ["jana@neu-solar.example", "tippfehler@neu-solar.example", "bernd@bau.example"]
    item_id, contact_id, message_id = queue_from_a_contact(mailbox, to, "Angebot Dach")
    smtp.behaviour.refuse_address = {
        "tippfehler@neu-solar.example": "550 5.1.1 <tippfehler@neu-solar.example>: no such user"
    }
    code, out = said(mailbox, capsys, "--now", NOW.isoformat(), "outbox", "flush")
    assert code == 1 and "1 partly sent" in out
    assert "not delivered to tippfehler@neu-solar.example: 550 5.1.1" in out
    assert [r[1] for r in smtp.received] == [["jana@neu-solar.example", "bernd@bau.example"]]
    item = listing(mailbox, capsys)[item_id]
    assert item["state"] == "partial" and item["shown_state"] == "partly sent: 1 refused"
    assert item["needs_decision"]
    assert item["refused"] == [
        {
            "address": "tippfehler@neu-solar.example",
            "reason": "550 5.1.1 <tippfehler@neu-solar.example>: no such user",
        }
    ]
    code, out = said(mailbox, capsys, "outbox", "list")
    assert "partly sent: 1 refused" in out
    assert (
        "refused tippfehler@neu-solar.example: 550 5.1.1 <tippfehler@neu-solar.example>: no such user" in out
    )
    # The email activity on the contact says who did not get it.
    db = mailbox.database()
    with db.read() as session:
        (activity,) = session.scalars(select(m.Activity).where(m.Activity.contact_id == contact_id)).all()
        description = activity.description or ""
    db.dispose()
    assert description.startswith("To: jana@neu-solar.example, bernd@bau.example\n")
    assert "Not delivered (refused by the server):\n  tippfehler@neu-solar.example: 550 5.1.1" in description
    assert server_subjects(mailbox, MARKED) == {"Angebot Dach"}

    # The address is fixed on the server's side; R (here: decide resend) sends it to that address only.
    smtp.behaviour.refuse_address = {}
    code, out = said(mailbox, capsys, "outbox", "decide", str(item_id), "resend")
    assert code == 0 and "queued again for tippfehler@neu-solar.example" in out
    assert flush_at(mailbox, 1) == 0
    assert [r[1] for r in smtp.received][1] == ["tippfehler@neu-solar.example"]
    again = email.message_from_bytes(smtp.received[1][2], policy=email.policy.default)
    assert again["Message-ID"] == message_id, "the same mail, not a new one"
    item = listing(mailbox, capsys)[item_id]
    assert item["state"] == "sent" and item["refused"] == []
    client = mailbox.imap()
    client.select_folder(MARKED, readonly=True)
    assert len(client.search(["ALL"])) == 1, "one copy in Sent"
    client.logout()
    db = mailbox.database()
    with db.read() as session:
        descriptions = [
            a.description for a in session.scalars(select(m.Activity).order_by(col(m.Activity.id)))
        ]
    db.dispose()
    assert descriptions[1:] == [
        "Sent again to: tippfehler@neu-solar.example (refused by the server before)"
    ], "the record says who got it later"


def test_a_recipient_refused_again_leaves_the_item_partly_sent_and_every_refusal_failed(
    mailbox: Mailbox, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    make_marked_sent(mailbox)
    item_id, _ = queue_mail(mailbox, to="jana@neu-solar.example, weg@neu-solar.example")
    smtp.behaviour.refuse_address = {"weg@neu-solar.example": "550 5.1.1 no such user"}
    assert flush_at(mailbox) == 1
    assert outbox_state(mailbox, capsys, item_id) == "partial"
    assert mailbox.cli("outbox", "decide", str(item_id), "resend") == 0
    assert flush_at(mailbox, 1) == 1
    assert len(smtp.received) == 1, "refused again: nothing delivered, nobody got it twice"
    item = listing(mailbox, capsys)[item_id]
    assert item["state"] == "partial", "it went out to the others: not failed"
    assert item["refused"] == [{"address": "weg@neu-solar.example", "reason": "550 5.1.1 no such user"}]
    # D on a partly sent mail lets the refused address go; the item stays, sent to the others.
    code, out = said(mailbox, capsys, "outbox", "decide", str(item_id), "drop")
    assert code == 0 and "stays sent to the others" in out
    assert outbox_state(mailbox, capsys, item_id) == "sent"
    # Every recipient refused: failed, each named.
    smtp.behaviour.refuse_address = {"a@x.example": "550 5.1.1 no a", "b@x.example": "553 5.1.3 bad b"}
    failed, _ = queue_mail(mailbox, to="a@x.example, b@x.example", subject="Nie")
    assert flush_at(mailbox, 2) == 1
    item = listing(mailbox, capsys)[failed]
    assert item["state"] == "failed"
    assert "a@x.example: 550 5.1.1 no a" in item["error"] and "b@x.example: 553 5.1.3 bad b" in item["error"]
    assert len(smtp.received) == 1


def test_a_recipient_only_put_off_gets_it_by_itself_later_one_refused_for_good_waits_for_the_user(
    mailbox: Mailbox, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 451 at RCPT is the server saying 'later': that address gets the mail by itself on a later flush, as a
    mail put off entirely would; an address refused for good (550) is not sent to again without the user."""
    make_marked_sent(mailbox)
    item_id, _ = queue_mail(
        mailbox, to="jana@neu-solar.example, voll@neu-solar.example, weg@neu-solar.example"
    )
    smtp.behaviour.refuse_address = {
        "voll@neu-solar.example": "451 4.2.2 mailbox full, try later",
        "weg@neu-solar.example": "550 5.1.1 no such user",
    }
    code, out = said(mailbox, capsys, "--now", NOW.isoformat(), "outbox", "flush")
    assert code == 1 and "tried again by itself" in out
    item = listing(mailbox, capsys)[item_id]
    assert item["shown_state"] == "partly sent: 1 put off, tried again by itself"
    assert not item["needs_decision"] and item["next_attempt_at"]
    assert {r["address"] for r in item["refused"]} == {"voll@neu-solar.example", "weg@neu-solar.example"}
    smtp.behaviour.refuse_address = {}  # the mailbox has room again; weg@ would now be taken too
    # Not before its time; it waits, and the exit status says it has not gone out (issue 21).
    assert flush_at(mailbox, 0) == 1 and len(smtp.received) == 1, "not before its time"
    assert flush_at(mailbox, 5) == 0
    assert [r[1] for r in smtp.received] == [["jana@neu-solar.example"], ["voll@neu-solar.example"]]
    item = listing(mailbox, capsys)[item_id]
    assert item["state"] == "partial" and item["needs_decision"]
    assert item["refused"] == [{"address": "weg@neu-solar.example", "reason": "550 5.1.1 no such user"}]
    assert server_subjects(mailbox, MARKED) and len(server_subjects(mailbox, MARKED)) == 1


def outbox_state(box: Mailbox, capsys: pytest.CaptureFixture[str], item_id: int) -> str:
    return str(listing(box, capsys)[item_id]["state"])


@ON_BOTH
def test_outbox_ids_are_not_given_again_after_a_drop_or_a_take_back(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str]
) -> None:
    from crm_tui.core.services.drafts import DraftFields

    first, _ = queue_mail(mailbox, subject="Eins")
    second, _ = queue_mail(mailbox, subject="Zwei")
    code, out = said(mailbox, capsys, "outbox", "decide", str(second), "drop")
    assert code == 0 and "taken out of the outbox" in out
    third, _ = queue_mail(mailbox, subject="Drei")
    assert third > second, "the dropped mail's id is not given to another"
    db = mailbox.database()
    with db.write() as session:
        account_id = id_of(mail_accounts.get_account(session, "work"))
        fields = DraftFields(
            account_id=account_id, from_address="anna@crm.example", to="jana@neu-solar.example", cc="", bcc="",
            subject="Drei", body="Hallo", in_reply_to=None, references=[], raw=b"",
        )  # fmt: skip
        outbox.take_back(session, third, fields, now=NOW)
    db.dispose()
    fourth, _ = queue_mail(mailbox, subject="Vier")
    assert fourth > third
    code, out = said(mailbox, capsys, "outbox", "decide", str(second), "resend")
    assert code != 0 and f"no outbox item {second}" in out
    assert set(listing(mailbox, capsys)) == {first, fourth}


def test_an_old_database_keeps_its_outbox_and_its_ids_are_not_given_again(tmp_path: Path) -> None:
    """0017 rebuilds SQLite's outbox_item with AUTOINCREMENT: what was queued stays, with its ids and bytes."""
    import sqlite3

    from crm_tui.core.db import open_database, sqlite_url
    from tests.core.test_migrations import _database_at

    path = _database_at(tmp_path, "0016")
    with sqlite3.connect(path) as raw:
        raw.execute(
            "INSERT INTO user (id, name, email, active, created_at) VALUES "
            "(1, 'Anna Berg', 'anna@crm.example', 1, '2026-11-01 10:00:00.000000')"
        )
        raw.execute(
            "INSERT INTO mail_account (id, name, user_id, preset, imap_host, imap_port, imap_security, username, "
            "password_source, addresses, refresh_minutes, created_at, signature) VALUES (1, 'work', 1, 'other', "
            "'imap.example', 993, 'ssl', 'anna', 'env', 'anna@crm.example', 5, '2026-11-01 10:00:00.000000', '')"
        )
        for n in (1, 2):
            raw.execute(
                "INSERT INTO outbox_item (id, account_id, message_id_header, from_address, recipients, subject, "
                "raw, state, attempts, created_at) VALUES (?, 1, ?, 'anna@crm.example', 'jana@neu.example', ?, ?, "
                "'queued', 0, '2026-11-01 10:00:00.000000')",
                (n, f"<m{n}@crm.example>", f"Mail {n}", f"Subject: Mail {n}\r\n\r\nHallo".encode()),
            )
    db = open_database(sqlite_url(path), backup_dir=tmp_path / "backups")
    with db.write() as session:
        assert [(r.id, r.subject) for r in reversed(outbox.rows(session, now=NOW))] == [
            (1, "Mail 1"),
            (2, "Mail 2"),
        ]
        assert bytes(session.get_one(m.OutboxItem, 2).raw).startswith(b"Subject: Mail 2")
        outbox.decide(session, 2, "drop", now=NOW)
    with db.write() as session:
        again = outbox.queue(
            session, account_id=1, message_id="<m3@crm.example>", from_address="anna@crm.example",
            recipients=["jana@neu.example"], subject="Mail 3", raw=b"Subject: Mail 3\r\n\r\nHallo", now=NOW,
        )  # fmt: skip
        assert again.id == 3, "not 2, the dropped mail's id"
    db.dispose()


async def test_the_outbox_view_names_the_refused_and_decides_a_cut_off_item_r_sends_to_the_refused_only(
    mailbox: Mailbox, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:

    from crm_tui.ui.app import CrmApp
    from crm_tui.ui.screens.dialogs import ConfirmDialog
    from tests.ui.helpers import make_context, outbox_from_inbox, wait_for

    make_marked_sent(mailbox)
    partial, _ = queue_mail(
        mailbox, to="jana@neu-solar.example, tippfehler@neu-solar.example", subject="Teils"
    )
    smtp.behaviour.refuse_address = {"tippfehler@neu-solar.example": "550 5.1.1 no such user"}
    assert flush_at(mailbox) == 1
    smtp.behaviour.refuse_address = {}
    # An item a process that is gone left "sending" (that process really ran, and ended).
    cut, _ = queue_mail(mailbox, subject="Abgebrochen")
    gone = subprocess.Popen(["true"])
    gone.wait()
    db = mailbox.database()
    with db.write() as session:
        item = session.get_one(m.OutboxItem, cut)
        item.state, item.claimed_by = "sending", f"{socket.gethostname()}:{gone.pid}"
    db.dispose()

    app = CrmApp(make_context(mailbox.home, demo=False), start_mode="inbox", sync_mail=False)
    async with app.run_test(size=(160, 48)) as pilot:
        view, grid = await outbox_from_inbox(app, pilot, rows=2)
        detail = view.query_one("#outbox-error")
        states = [str(grid.get_row_at(i)[0]) for i in range(2)]
        assert states == ["sending, cut off", "partly sent: 1 refused"]
        assert "outbox: 0 waiting, 2 need a decision" in str(app.screen.query_one("StatusBar").render())
        assert "the process sending it stopped" in str(detail.render())
        await pilot.press("D")  # drop the cut-off one: asked first, y drops
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
        await pilot.press("y")
        await wait_for(lambda: grid.row_count == 1, pilot)
        await wait_for(
            lambda: "refused tippfehler@neu-solar.example: 550 5.1.1 no such user" in str(detail.render()),
            pilot,
        )
        assert "R sends it again to the refused addresses" in str(detail.render())
        await pilot.press("R")
        await wait_for(lambda: len(smtp.received) == 2, pilot, timeout=20)
        await wait_for(lambda: str(grid.get_row_at(0)[0]) == "sent", pilot)
    assert [r[1] for r in smtp.received] == [["jana@neu-solar.example"], ["tippfehler@neu-solar.example"]]
    assert set(listing(mailbox, capsys)) == {partial}


def claim(box: Mailbox, item_id: int, by: str, at: datetime) -> None:
    """The item as a delivery claims it: ``sending``, by the process ``by`` (host:pid), at ``at``."""
    db = box.database()
    with db.write() as session:
        item = session.get_one(m.OutboxItem, item_id)
        item.state, item.claimed_by, item.claimed_at = "sending", by, at
        item.attempts += 1
    db.dispose()


@ON_BOTH
def test_an_item_another_machine_is_sending_is_left_alone_until_its_claim_runs_out(
    mailbox: Mailbox, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A team's shared database: machine A claimed the item a minute ago and is sending it. Whether A's
    process runs cannot be asked from here; B's flush took it for cut off, called it uncertain and B's user
    could send it again: the mail went twice. A claim from another host holds for its lease (15 minutes)."""
    make_marked_sent(mailbox)
    item_id, _ = queue_mail(mailbox, subject="Angebot")
    behind, _ = queue_mail(mailbox, subject="Rechnung")
    claim(mailbox, item_id, "otherhost:123", NOW - timedelta(minutes=1))
    item = listing(mailbox, capsys)[item_id]
    assert item["shown_state"] == "sending" and not item["needs_decision"]
    code, out = said(mailbox, capsys, "--now", NOW.isoformat(), "outbox", "flush")
    assert code == 0 and "1 sent" in out and "uncertain" not in out, out
    items = listing(mailbox, capsys)
    assert items[item_id]["state"] == "sending" and not items[item_id]["needs_decision"]
    assert items[behind]["state"] == "sent", "the mail behind it went out"
    assert [r[2].find(b"Subject: Rechnung") >= 0 for r in smtp.received] == [True]
    for decision in ("resend", "sent", "drop"):
        code, out = said(mailbox, capsys, "outbox", "decide", str(item_id), decision)
        assert code != 0 and "being delivered right now (by process otherhost:123)" in out, out
        assert "counts as cut off in 14 minutes" in out and "internal error" not in out
    assert listing(mailbox, capsys)[item_id]["state"] == "sending"

    # Twenty minutes after its claim, A's delivery is over or A stopped: B settles it, the user decides.
    claim(mailbox, item_id, "otherhost:123", NOW - timedelta(minutes=20))
    item = listing(mailbox, capsys)[item_id]
    assert item["shown_state"] == "sending, cut off" and item["needs_decision"]
    code, out = said(mailbox, capsys, "--now", NOW.isoformat(), "outbox", "flush")
    assert code == 1 and "1 uncertain" in out and "the mail is not in Sent" in out
    assert listing(mailbox, capsys)[item_id]["state"] == "uncertain"
    code, out = said(mailbox, capsys, "outbox", "decide", str(item_id), "resend")
    assert code == 0 and "queued again for jana.roth@neu-solar.example" in out
    assert flush_at(mailbox, 1) == 0 and len(smtp.received) == 2
    assert listing(mailbox, capsys)[item_id]["state"] == "sent"


def test_a_claim_from_another_machine_found_just_before_its_lease_ran_out_is_not_settled_twice(
    mailbox: Mailbox, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """An item on this host's own dead process is cut off at once, whatever its claim's time; one claimed by
    another host 14 minutes ago is not, one claimed 16 minutes ago is."""
    make_marked_sent(mailbox)
    gone = subprocess.Popen(["true"])
    gone.wait()
    here, _ = queue_mail(mailbox, subject="Hier")
    young, _ = queue_mail(mailbox, subject="Jung")
    old, _ = queue_mail(mailbox, subject="Alt")
    claim(mailbox, here, f"{socket.gethostname()}:{gone.pid}", NOW)
    claim(mailbox, young, "otherhost:77", NOW - timedelta(minutes=14))
    claim(mailbox, old, "otherhost:77", NOW - timedelta(minutes=16))
    items = listing(mailbox, capsys)
    assert [items[i]["needs_decision"] for i in (here, young, old)] == [True, False, True]
    code, out = said(mailbox, capsys, "--now", NOW.isoformat(), "outbox", "flush")
    assert "2 uncertain" in out
    items = listing(mailbox, capsys)
    assert [items[i]["state"] for i in (here, young, old)] == ["uncertain", "sending", "uncertain"]
    assert smtp.received == []


@ON_BOTH
def test_a_cut_off_send_again_to_a_refused_address_is_uncertain_not_found_by_the_first_copy(
    mailbox: Mailbox, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A partly sent mail sent again to the refused address, the flush killed once the server had it: the
    Sent folder holds the first send's copy whatever became of the second, so finding it there proves
    nothing about the refused address. It is uncertain for that address; the user decides."""
    make_marked_sent(mailbox)
    item_id, _ = queue_mail(mailbox, to="jana@neu-solar.example, tippfehler@neu-solar.example")
    smtp.behaviour.refuse_address = {"tippfehler@neu-solar.example": "550 5.1.1 no such user"}
    assert flush_at(mailbox) == 1 and outbox_state(mailbox, capsys, item_id) == "partial"
    assert server_subjects(mailbox, MARKED) == {"Angebot"}, "the first send's copy"
    smtp.behaviour.refuse_address = {}
    assert mailbox.cli("outbox", "decide", str(item_id), "resend") == 0
    process = flush_in_a_process(mailbox)
    smtp.behaviour.kill_pid, smtp.behaviour.kill_at = process.pid, "data"
    assert process.wait(timeout=60) == -9
    assert [r[1] for r in smtp.received] == [["jana@neu-solar.example"], ["tippfehler@neu-solar.example"]]
    assert outbox_state(mailbox, capsys, item_id) == "sending"

    code, out = said(mailbox, capsys, "--now", NOW.isoformat(), "outbox", "flush")
    assert code == 1 and "found in Sent" not in out and "1 uncertain" in out, out
    assert "sending it again to tippfehler@neu-solar.example was cut off" in out
    item = listing(mailbox, capsys)[item_id]
    assert item["state"] == "uncertain" and item["needs_decision"]
    code, out = said(mailbox, capsys, "outbox", "decide", str(item_id), "resend")
    assert code == 0 and "queued again for tippfehler@neu-solar.example" in out, "not jana again"
    assert flush_at(mailbox, 1) == 0
    assert [r[1] for r in smtp.received][2:] == [["tippfehler@neu-solar.example"]]
    assert outbox_state(mailbox, capsys, item_id) == "sent"
    assert len(server_subjects(mailbox, MARKED)) == 1

    # D on such an item lets the address go; the item stays, sent to the others (it was taken out).
    other, _ = queue_mail(mailbox, to="jana@neu-solar.example, weg@neu-solar.example", subject="Zwei")
    db = mailbox.database()
    with db.write() as session:
        row = session.get_one(m.OutboxItem, other)
        row.state, row.sent_at, row.last_error = "uncertain", NOW, "sending it again to weg@... was cut off"
    db.dispose()
    code, out = said(mailbox, capsys, "outbox", "decide", str(other), "drop")
    assert code == 0 and "stays sent to the others" in out
    assert outbox_state(mailbox, capsys, other) == "sent"


class SpecialUseOnlyWhenAsked(Proxy):
    """A proxy before Dovecot playing a server that names its folders' special use (RFC 6154) only when asked
    (LIST ... RETURN (SPECIAL-USE)): the flags are taken out of a plain LIST's answer. It records the LIST
    commands it saw."""

    FLAGS = (b"\\Sent", b"\\Trash", b"\\Archive", b"\\Drafts", b"\\Junk", b"\\All", b"\\Flagged")

    def __init__(self, target_port: int) -> None:
        self.lists: list[bytes] = []
        super().__init__(target_port, up=self._from_client, down=self._from_server, lines=True)

    def _from_client(self, line: bytes, link: Link) -> bytes:
        command = line.rstrip(b"\r\n").upper()
        if b" LIST " in command:
            self.lists.append(command)
            link.state["asked"] = (
                b"RETURN (SPECIAL-USE)" in command
            )  # the command being answered asked for them
        return line

    def _from_server(self, line: bytes, link: Link) -> bytes:
        if line.startswith(b"* LIST (") and not link.state.get("asked"):
            flags, rest = line[len(b"* LIST (") :].split(b")", 1)
            kept = [f for f in flags.split() if f not in self.FLAGS]
            line = b"* LIST (" + b" ".join(kept) + b")" + rest
        return line


def test_the_sent_folder_is_asked_for_by_its_special_use_a_plain_listing_would_miss_it(
    mailbox: Mailbox, smtp: SmtpServer, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """On a server that marks its Sent folder only when asked, a plain listing finds the decoy folder called
    Sent: the copy must go to the marked one ("Versendete Elemente"), which only LIST ... RETURN
    (SPECIAL-USE) names."""
    make_marked_sent(mailbox)
    client = mailbox.imap()
    client.create_folder("Sent")  # the decoy: called Sent, not marked
    client.logout()
    proxy = SpecialUseOnlyWhenAsked(mailbox.server.port)
    try:
        assert mailbox.cli("account", "edit", "work", "--imap-port", str(proxy.port)) == 0
        import imapclient

        seen = imapclient.IMAPClient("127.0.0.1", port=proxy.port, ssl=False, timeout=30)
        seen.login(mailbox.user, mailbox.password)
        plain_flags = {str(name): set(flags) for flags, _, name in seen.list_folders()}
        seen.logout()
        assert b"\\Sent" not in plain_flags[MARKED], "a plain listing does not name it here"
        proxy.lists.clear()
        item_id, _ = queue_mail(mailbox, subject="Angebot")
        with caplog.at_level("WARNING", logger="crm_tui.mail.outbox"):
            assert flush_at(mailbox) == 0
        assert server_subjects(mailbox, MARKED) == {"Angebot"}
        assert server_subjects(mailbox, "Sent") == set(), "not the decoy called Sent"
        assert any(b"RETURN (SPECIAL-USE)" in command for command in proxy.lists), proxy.lists
        assert not [r for r in caplog.records if "SPECIAL-USE" in r.getMessage()], "no fallback"
        assert outbox_state(mailbox, capsys, item_id) == "sent"
    finally:
        proxy.close()


def test_a_server_that_refuses_list_return_is_listed_the_plain_way_with_a_warning(
    mailbox: Mailbox, smtp: SmtpServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fallback still finds a Sent folder the plain listing marks (Dovecot does), and says at warning
    level that it was taken (a marked folder named only when asked would be missed)."""
    import imaplib

    make_marked_sent(mailbox)
    real: Callable[..., tuple[str, list[bytes]]] = imaplib.IMAP4._simple_command  # type: ignore[attr-defined]  # private in imaplib, left out of typeshed

    def refuse_list_return(self: imaplib.IMAP4, name: str, *args: str) -> tuple[str, list[bytes]]:
        if name == "LIST" and "RETURN" in args:
            return "BAD", [b"Error in IMAP command LIST: Unknown return option"]
        return real(self, name, *args)

    monkeypatch.setattr(imaplib.IMAP4, "_simple_command", refuse_list_return)
    item_id, _ = queue_mail(mailbox, subject="Angebot")
    with caplog.at_level("WARNING", logger="crm_tui.mail.outbox"):
        assert flush_at(mailbox) == 0
    (record,) = [r for r in caplog.records if "SPECIAL-USE" in r.getMessage()]
    assert record.levelname == "WARNING" and "listing the plain way" in record.getMessage()
    assert server_subjects(mailbox, MARKED) == {"Angebot"}
