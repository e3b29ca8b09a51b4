"""Sync against a real Dovecot: the corpus, identity and merging, flags, expunges, UIDVALIDITY, offline changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlmodel import col

from crm_tui.core import models as m
from crm_tui.core.mail_identity import body_hash
from crm_tui.core.services import mail_accounts
from crm_tui.core.services import mailbox as mailbox_service
from crm_tui.mail.parse import parse_message
from tests.conftest import corpus_dir
from tests.integration.conftest import ON_BOTH, Mailbox
from tests.utils.ids import id_of


def corpus_messages() -> list[Path]:
    return sorted(p for p in corpus_dir().iterdir() if p.suffix == ".eml")


def mail_json(box: Mailbox, capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, Any]]:
    capsys.readouterr()
    code = box.cli(*argv) if "--json" in argv else box.cli(*argv, "--json")
    assert code == 0, capsys.readouterr().err
    listed: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return listed


def message(
    n: int,
    *,
    mid: str | None = None,
    body: str = "Hello",
    sender: str = "kunde@firma.example",
    subject: str = "Angebot",
    extra: str = "",
) -> bytes:
    lines = [
        f"From: Kunde {n} <{sender}>",
        "To: Anna Berg <anna@crm.example>",
        f"Subject: {subject} {n}",
        "Date: Fri, 20 Nov 2026 10:00:00 +0100",
    ]
    if mid is not None:
        lines.append(f"Message-ID: {mid}")
    if extra:
        lines.append(extra)
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode()


@ON_BOTH
def test_the_whole_corpus_syncs_and_lists(mailbox: Mailbox, capsys: pytest.CaptureFixture[str]) -> None:
    files = corpus_messages()
    client = mailbox.imap()
    for path in files:
        client.append("INBOX", path.read_bytes())
    client.logout()

    def ever_synced() -> bool:  # a first sync starts its parse helper before its login
        with mailbox.database().read() as session:
            return mailbox_service.ever_synced(session, id_of(mail_accounts.get_account(session, "work")))

    assert not ever_synced()
    assert mailbox.cli("sync") == 0
    out = capsys.readouterr().out
    assert f"{len(files)} new" in out and f"{len(files)} bodies" in out
    assert ever_synced()
    listed = mail_json(mailbox, capsys, "mail", "list")
    client = mailbox.imap()
    client.select_folder("INBOX", readonly=True)
    served = [data[b"BODY[]"] for data in client.fetch(client.search(["ALL"]), ["BODY.PEEK[]"]).values()]
    client.logout()
    # The corpus holds some messages twice (the same sample in two test suites): one message, two copies.
    identities = {
        (parse_message(raw).message_id, body_hash(raw, has_message_id=bool(parse_message(raw).message_id)))
        for raw in served
    }
    assert len(listed) == len(identities), "every corpus message is listed exactly once"
    assert sum(len(item["locations"]) for item in listed) == len(files), "every server copy is a location"
    assert all(item["locations"] and item["has_body"] for item in listed)
    # Raw bytes are kept exactly as the server sent them (Dovecot serves CRLF).
    db = mailbox.database()
    with db.read() as session:
        raws = set(session.scalars(select(col(m.MailRaw.raw))))
    db.dispose()
    assert raws <= set(served) and len(raws) == len(identities)


def test_copies_of_one_message_are_one_and_shared_message_ids_stay_two(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str]
) -> None:
    same_body = message(1, mid="<one@firma.example>")
    mailbox.append("INBOX", b"Received: from a by b; Fri, 20 Nov 2026 10:00:01 +0100\r\n" + same_body)
    mailbox.append("Archive", b"Received: from c by d; Fri, 20 Nov 2026 10:05:00 +0100\r\n" + same_body)
    mailbox.append("INBOX", message(2, mid="<one@firma.example>", body="A different message, same id"))
    assert mailbox.cli("sync") == 0
    listed = mail_json(mailbox, capsys, "mail", "list")
    assert len(listed) == 2
    copies = sorted(len(item["locations"]) for item in listed)
    assert copies == [1, 2]
    both = next(item for item in listed if len(item["locations"]) == 2)
    assert {loc["folder"] for loc in both["locations"]} == {"INBOX", "Archive"}
    # A second pass changes nothing.
    assert mailbox.cli("sync") == 0
    assert len(mail_json(mailbox, capsys, "mail", "list")) == 2


def _ids_by_subject(box: Mailbox, capsys: pytest.CaptureFixture[str]) -> dict[str, int]:
    return {item["subject"]: item["id"] for item in mail_json(box, capsys, "mail", "list")}


@ON_BOTH
def test_flags_changed_on_the_server_arrive_and_expunges_go(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in range(1, 4):
        mailbox.append("INBOX", message(n, mid=f"<f{n}@firma.example>"))
    assert mailbox.cli("sync") == 0
    client = mailbox.imap()
    client.select_folder("INBOX")
    uids = sorted(client.search(["ALL"]))
    client.add_flags([uids[0]], [b"\\Seen"])
    client.add_flags([uids[1]], [b"\\Flagged"])
    client.add_flags([uids[2]], [b"\\Deleted"])
    client.expunge()
    client.logout()
    assert mailbox.cli("sync") == 0
    listed = {item["subject"]: item for item in mail_json(mailbox, capsys, "mail", "list")}
    assert set(listed) == {"Angebot 1", "Angebot 2"}, "the expunged message is gone"
    assert "seen" in listed["Angebot 1"]["flags"]
    assert "flagged" in listed["Angebot 2"]["flags"] and "unseen" in listed["Angebot 2"]["flags"]


@ON_BOTH
def test_a_uidvalidity_change_keeps_ids_and_links(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str]
) -> None:
    client = mailbox.imap()
    client.create_folder("Projekte")
    client.logout()
    raws = [message(n, mid=f"<p{n}@firma.example>") for n in range(1, 4)]
    for raw in raws:
        mailbox.append("Projekte", raw)
    assert mailbox.cli("sync") == 0
    before = _ids_by_subject(mailbox, capsys)
    # A note on the deal: file message 2 by hand on a contact.
    db = mailbox.database()
    from crm_tui.core.services import mail_linking
    from crm_tui.core.types import RecordRef
    from tests.conftest import NOW
    from tests.utils import factories

    with db.write() as session:
        person = factories.contact(session, NOW, last_name="Keeper")
        mail_linking.link_manually(
            session, before["Angebot 2"], RecordRef.parse(f"contact:{person.id}"), now=NOW
        )
        contact_id = person.id
    db.dispose()
    # The server rebuilds the folder: same messages, new UIDVALIDITY.
    client = mailbox.imap()
    old = client.select_folder("Projekte")[b"UIDVALIDITY"]
    client.unselect_folder()
    client.delete_folder("Projekte")
    client.create_folder("Projekte")
    for raw in raws:
        client.append("Projekte", raw)
    new = client.select_folder("Projekte")[b"UIDVALIDITY"]
    client.logout()
    assert new != old
    assert mailbox.cli("sync") == 0
    after = {item["subject"]: item for item in mail_json(mailbox, capsys, "mail", "list")}
    assert {s: i["id"] for s, i in after.items()} == before, "the same ids"
    assert all(len(i["locations"]) == 1 and i["locations"][0]["uidvalidity"] == new for i in after.values())
    assert {"record": f"contact:{contact_id}", "how": "manual"} in after["Angebot 2"]["links"]


@ON_BOTH
def test_offline_changes_apply_at_once_and_replay_on_the_next_sync(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in range(1, 5):
        mailbox.append("INBOX", message(n, mid=f"<o{n}@firma.example>"))
    assert mailbox.cli("sync") == 0
    ids = _ids_by_subject(mailbox, capsys)
    # Offline: the server is out of reach while the user works.
    assert mailbox.cli("mail", "read", str(ids["Angebot 1"])) == 0
    assert mailbox.cli("mail", "flag", str(ids["Angebot 2"])) == 0
    assert mailbox.cli("mail", "archive", str(ids["Angebot 3"])) == 0
    assert mailbox.cli("mail", "delete", str(ids["Angebot 4"])) == 0
    db = mailbox.database()
    with db.read() as session:
        assert session.get_one(m.MailMessage, ids["Angebot 1"]).is_read, "applied locally at once"
        assert session.get_one(m.MailMessage, ids["Angebot 2"]).is_flagged
    db.dispose()
    assert mailbox.cli("sync") == 0
    assert mailbox.cli("sync") == 0  # a second pass replays nothing twice
    client = mailbox.imap()
    client.select_folder("INBOX", readonly=True)
    inbox = {
        data[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().strip(): data[b"FLAGS"]
        for data in client.fetch(
            client.search(["ALL"]), ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]", "FLAGS"]
        ).values()
    }
    client.select_folder("Archive", readonly=True)
    archived = len(client.search(["ALL"]))
    client.select_folder("Trash", readonly=True)
    trashed = len(client.search(["ALL"]))
    client.logout()
    assert set(inbox) == {"Subject: Angebot 1", "Subject: Angebot 2"}
    assert b"\\Seen" in inbox["Subject: Angebot 1"] and b"\\Flagged" in inbox["Subject: Angebot 2"]
    assert (archived, trashed) == (1, 1)
    listed = {item["subject"]: item for item in mail_json(mailbox, capsys, "mail", "list")}
    assert [loc["folder"] for loc in listed["Angebot 3"]["locations"]] == ["Archive"]
    assert listed["Angebot 3"]["id"] == ids["Angebot 3"], "a moved message keeps its id"
    assert [loc["folder"] for loc in listed["Angebot 4"]["locations"]] == ["Trash"]


@ON_BOTH
def test_offline_changes_survive_a_renumbered_folder(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """Changes made offline to the copies of a folder the server then renumbers (a new UIDVALIDITY, the same
    messages) reach the same messages, found again by identity: none is marked done and lost."""
    client = mailbox.imap()
    client.create_folder("Projekte")
    client.logout()
    raws = {n: message(n, mid=f"<u{n}@firma.example>", body=f"Text {n}") for n in range(1, 7)}
    seen = {2}  # the one the user marks unread was read
    for n, raw in raws.items():
        mailbox.append("Projekte", raw, flags=(b"\\Seen",) if n in seen else ())
    assert mailbox.cli("sync") == 0
    ids = _ids_by_subject(mailbox, capsys)
    # Offline: flag, mark unread, delete, move.
    assert mailbox.cli("mail", "flag", str(ids["Angebot 1"])) == 0
    assert mailbox.cli("mail", "unread", str(ids["Angebot 2"])) == 0
    assert mailbox.cli("mail", "delete", str(ids["Angebot 3"])) == 0
    assert mailbox.cli("mail", "move", str(ids["Angebot 4"]), "--to", "Erledigt") == 0
    assert mailbox.cli("mail", "flag", str(ids["Angebot 6"])) == 0  # the one the server loses
    # Meanwhile the server rebuilds the folder: the same messages, renumbered (all but one).
    client = mailbox.imap()
    old = client.select_folder("Projekte")[b"UIDVALIDITY"]
    client.unselect_folder()
    client.delete_folder("Projekte")
    client.create_folder("Projekte")
    for n, raw in raws.items():
        if n != 6:
            client.append("Projekte", raw, flags=(b"\\Seen",) if n in seen else ())
    assert client.select_folder("Projekte")[b"UIDVALIDITY"] != old
    client.logout()
    capsys.readouterr()
    assert mailbox.cli("sync") == 0
    out = capsys.readouterr().out
    assert "4 offline changes sent" in out
    assert "offline change 5 (flag) was not made: the message is no longer in its folder on the server" in out

    def server() -> dict[str, dict[str, set[bytes]]]:
        client = mailbox.imap()
        folders: dict[str, dict[str, set[bytes]]] = {}
        for _, _, name in client.list_folders():
            client.select_folder(name, readonly=True)
            uids = client.search(["ALL"])
            folders[name] = (
                {
                    data[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().strip(): set(data[b"FLAGS"])
                    for data in client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]", "FLAGS"]).values()
                }
                if uids
                else {}
            )
        client.logout()
        return folders

    folders = server()
    projekte = folders["Projekte"]
    assert set(projekte) == {"Subject: Angebot 1", "Subject: Angebot 2", "Subject: Angebot 5"}
    assert b"\\Flagged" in projekte["Subject: Angebot 1"], "flagged"
    assert b"\\Seen" not in projekte["Subject: Angebot 2"], "marked unread"
    assert (
        b"\\Flagged" not in projekte["Subject: Angebot 5"] and b"\\Seen" not in projekte["Subject: Angebot 5"]
    )
    assert set(folders["Trash"]) == {"Subject: Angebot 3"}, "deleted"
    assert set(folders["Erledigt"]) == {"Subject: Angebot 4"}, "moved"
    # The store agrees, keeps every message's id, and a second pass replays nothing twice.
    capsys.readouterr()
    assert mailbox.cli("sync") == 0
    assert "offline change" not in capsys.readouterr().out
    assert server() == folders
    listed = {item["subject"]: item for item in mail_json(mailbox, capsys, "mail", "list")}
    del ids["Angebot 6"]  # gone from the server
    assert {s: i["id"] for s, i in listed.items()} == ids, "the same messages, no copy twice"
    where = {s: sorted(loc["folder"] for loc in i["locations"]) for s, i in listed.items()}
    assert where == {
        "Angebot 1": ["Projekte"],
        "Angebot 2": ["Projekte"],
        "Angebot 3": ["Trash"],
        "Angebot 4": ["Erledigt"],
        "Angebot 5": ["Projekte"],
    }
    assert "flagged" in listed["Angebot 1"]["flags"] and "unseen" in listed["Angebot 2"]["flags"]
    db = mailbox.database()
    with db.read() as session:
        changes = session.scalars(select(m.MailChange)).all()
        assert [(c.done_at is not None, c.error) for c in changes] == [(True, None)] * 4
    db.dispose()


def test_an_offline_change_the_server_refuses_says_why_in_its_words(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """A move to a folder the server will not make: the change is reported with the server's own reason,
    not with an exception's class name ("error: create failed: ...")."""
    mailbox.append("INBOX", message(1, mid="<refused@firma.example>"))
    assert mailbox.cli("sync") == 0
    ids = _ids_by_subject(mailbox, capsys)
    assert mailbox.cli("mail", "move", str(ids["Angebot 1"]), "--to", "~Ablage") == 0
    capsys.readouterr()
    assert mailbox.cli("sync") == 0
    out = capsys.readouterr().out
    assert "offline change 1 (move) failed: the server said: [CANNOT] Invalid mailbox name" in out, out
    assert "error:" not in out and "failed:" not in out.split("the server said:")[1], out


def _renumber(box: Mailbox, folder: str, raws: list[bytes], **append: object) -> None:
    """The server rebuilds a folder: the same messages (``raws``), a new UIDVALIDITY."""
    client = box.imap()
    old = client.select_folder(folder)[b"UIDVALIDITY"]
    client.unselect_folder()
    client.delete_folder(folder)
    client.create_folder(folder)
    for raw in raws:
        client.append(folder, raw, **append)
    assert client.select_folder(folder)[b"UIDVALIDITY"] != old
    client.logout()


def _server_flags(box: Mailbox, folder: str) -> dict[str, set[bytes]]:
    client = box.imap()
    client.select_folder(folder, readonly=True)
    uids = client.search(["ALL"])
    flags = {
        data[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().strip(): set(data[b"FLAGS"])
        for data in (
            client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]", "FLAGS"]) if uids else {}
        ).values()
    }
    client.logout()
    return flags


def _changes(box: Mailbox) -> list[tuple[bool, str | None]]:
    db = box.database()
    with db.read() as session:
        changes = [(c.done_at is not None, c.error) for c in session.scalars(select(m.MailChange))]
    db.dispose()
    return changes


@ON_BOTH
def test_an_offline_change_waits_while_its_renumbered_folder_is_not_synced_in_full(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bodies of a renumbered folder do not come in one pass (the fetch of that folder fails): a change
    waiting for its copy there is neither given up nor reported lost; the next pass finds the copy and
    makes it."""
    from crm_tui.mail import sync as sync_module

    client = mailbox.imap()
    client.create_folder("Projekte")
    client.logout()
    raws = [message(n, mid=f"<w{n}@firma.example>", body=f"Text {n}") for n in (1, 2)]
    for raw in raws:
        mailbox.append("Projekte", raw)
    assert mailbox.cli("sync") == 0
    ids = _ids_by_subject(mailbox, capsys)
    assert mailbox.cli("mail", "flag", str(ids["Angebot 1"])) == 0
    assert mailbox.cli("mail", "read", str(ids["Angebot 2"])) == 0
    _renumber(mailbox, "Projekte", raws)
    fetch = sync_module.AccountSync._fetch_here

    def failing(self: sync_module.AccountSync, batch: list[mailbox_service.PendingBody]) -> object:
        if batch[0].folder_name == "Projekte":
            return None  # the server's answer did not come for this folder in this pass
        return fetch(self, batch)

    monkeypatch.setattr(sync_module.AccountSync, "_fetch_here", failing)
    capsys.readouterr()
    assert mailbox.cli("sync") == 0
    out = capsys.readouterr().out
    assert "was not made" not in out and "no longer" not in out, out
    assert _changes(mailbox) == [(False, None)] * 2, "both still wait"
    assert all(
        b"\\Flagged" not in f and b"\\Seen" not in f for f in _server_flags(mailbox, "Projekte").values()
    )
    monkeypatch.undo()
    monkeypatch.setenv(mailbox.env_var, mailbox.password)
    capsys.readouterr()
    assert mailbox.cli("sync") == 0
    out = capsys.readouterr().out
    assert "2 offline changes sent" in out and "was not made" not in out, out
    flags = _server_flags(mailbox, "Projekte")
    assert b"\\Flagged" in flags["Subject: Angebot 1"] and b"\\Seen" in flags["Subject: Angebot 2"]
    assert _changes(mailbox) == [(True, None)] * 2
    listed = {item["subject"]: item for item in mail_json(mailbox, capsys, "mail", "list")}
    assert {s: i["id"] for s, i in listed.items()} == ids, "the same messages, no copy twice"
    assert all(len(i["locations"]) == 1 for i in listed.values())


def test_an_offline_change_whose_message_went_is_reported_after_a_stopped_pass(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server lost the message of a waiting change when it renumbered the folder, and the pass stopped
    right after dropping the old copies (the link cut): the next pass still says the change was not made
    (dropping the message had dropped its change without a word)."""
    from crm_tui.mail import sync as sync_module
    from crm_tui.mail.imap import MailConnectionError

    client = mailbox.imap()
    client.create_folder("Projekte")
    client.logout()
    raws = [message(n, mid=f"<g{n}@firma.example>", body=f"Text {n}") for n in (1, 2)]
    for raw in raws:
        mailbox.append("Projekte", raw)
    assert mailbox.cli("sync") == 0
    ids = _ids_by_subject(mailbox, capsys)
    assert mailbox.cli("mail", "flag", str(ids["Angebot 2"])) == 0
    _renumber(mailbox, "Projekte", raws[:1])  # the server lost Angebot 2
    replay = sync_module.AccountSync._replay_changes

    def cut(self: sync_module.AccountSync, waited: dict[int, set[str]] | None = None) -> dict[int, set[str]]:
        if waited:
            raise MailConnectionError("work: the connection dropped; what arrived is kept", "dropped")
        return replay(self, waited)

    monkeypatch.setattr(sync_module.AccountSync, "_replay_changes", cut)
    assert mailbox.cli("sync") == 1
    monkeypatch.undo()
    monkeypatch.setenv(mailbox.env_var, mailbox.password)
    capsys.readouterr()
    assert mailbox.cli("sync") == 0
    out = capsys.readouterr().out
    assert "offline change 1 (flag) was not made: the message is no longer on the server" in out, out
    listed = {item["subject"]: item["id"] for item in mail_json(mailbox, capsys, "mail", "list")}
    assert listed == {"Angebot 1": ids["Angebot 1"]}


def test_removing_an_account_takes_its_messages_with_changes_still_to_send(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """A message whose offline change waits is kept by the store till a sync has reported that change; the
    account removed, no sync of it will, and its messages go as the others do."""
    mailbox.append("INBOX", message(1, mid="<removed@firma.example>"))
    assert mailbox.cli("sync") == 0
    ids = _ids_by_subject(mailbox, capsys)
    assert mailbox.cli("mail", "flag", str(ids["Angebot 1"])) == 0
    assert mailbox.cli("account", "remove", "work") == 0
    assert mail_json(mailbox, capsys, "mail", "list") == []
    assert _changes(mailbox) == []


def test_an_offline_change_older_than_the_sync_window_reaches_its_renumbered_copy(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """A message older than the account's sync window is not fetched again after its folder is renumbered:
    the change waiting for it finds it by its Message-ID (and body) on the server, and the message keeps
    its copy there; it is not reported as gone."""
    from datetime import UTC, datetime

    old_time = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)
    raws = [message(n, mid=f"<s{n}@firma.example>", body=f"Text {n}") for n in (1, 2)]
    client = mailbox.imap()
    client.create_folder("Projekte")
    for raw in raws:
        client.append("Projekte", raw, msg_time=old_time)
    client.logout()
    assert mailbox.cli("sync") == 0
    ids = _ids_by_subject(mailbox, capsys)
    assert mailbox.cli("account", "edit", "work", "--sync-since", "2026-11-01") == 0
    assert mailbox.cli("mail", "flag", str(ids["Angebot 1"])) == 0
    _renumber(mailbox, "Projekte", raws, msg_time=old_time)
    capsys.readouterr()
    assert mailbox.cli("sync") == 0
    out = capsys.readouterr().out
    assert "1 offline change sent" in out and "was not made" not in out, out
    assert b"\\Flagged" in _server_flags(mailbox, "Projekte")["Subject: Angebot 1"]
    assert _changes(mailbox) == [(True, None)]
    listed = {item["subject"]: item for item in mail_json(mailbox, capsys, "mail", "list")}
    assert listed["Angebot 1"]["id"] == ids["Angebot 1"] and "flagged" in listed["Angebot 1"]["flags"]
    assert [loc["folder"] for loc in listed["Angebot 1"]["locations"]] == ["Projekte"]


def test_sync_errors_are_one_clear_line(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(mailbox.env_var, "wrong")
    capsys.readouterr()
    assert mailbox.cli("account", "test", "work") == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "refused the user name or password" in err
    monkeypatch.setenv(mailbox.env_var, mailbox.password)
    assert mailbox.cli("account", "test", "work") == 0
    assert "INBOX" in capsys.readouterr().out
    from tests.integration.dovecot import free_port

    assert mailbox.cli("account", "edit", "work", "--imap-port", str(free_port())) == 0
    capsys.readouterr()
    assert mailbox.cli("sync") == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nothing answers on 127.0.0.1:" in err
    assert mailbox.cli("account", "edit", "work", "--imap-host", "no-such-host.invalid") == 0
    capsys.readouterr()
    assert mailbox.cli("account", "test", "work") == 1
    assert "unknown host 'no-such-host.invalid'" in capsys.readouterr().err


def test_mail_raw_writes_the_servers_bytes_and_fetches_a_missing_body(
    mailbox: Mailbox, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    from crm_tui.mail import sync as sync_module

    for n in (1, 2):
        mailbox.append("INBOX", message(n, mid=f"<r{n}@firma.example>"))
    # Headers only: the list is usable before any body arrives.
    monkeypatch.setattr(sync_module.AccountSync, "_fetch_bodies", lambda self: None)
    assert mailbox.cli("sync") == 0
    monkeypatch.undo()
    monkeypatch.setenv(mailbox.env_var, mailbox.password)
    capsysbinary.readouterr()
    assert mailbox.cli("mail", "list", "--json") == 0
    listed = {item["subject"]: item for item in json.loads(capsysbinary.readouterr().out)}
    assert not listed["Angebot 1"]["has_body"] and listed["Angebot 1"]["from"]
    client = mailbox.imap()
    client.select_folder("INBOX", readonly=True)
    served = {
        d[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().strip(): d[b"BODY[]"]
        for d in client.fetch(
            client.search(["ALL"]), ["BODY.PEEK[]", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]"]
        ).values()
    }
    client.logout()
    assert mailbox.cli("mail", "raw", str(listed["Angebot 1"]["id"])) == 0
    assert capsysbinary.readouterr().out == served["Subject: Angebot 1"], "fetched on demand, byte for byte"
    assert mailbox.cli("mail", "raw", str(listed["Angebot 1"]["id"])) == 0
    assert capsysbinary.readouterr().out == served["Subject: Angebot 1"], "now from the store"
    from tests.integration.dovecot import free_port

    assert mailbox.cli("account", "edit", "work", "--imap-port", str(free_port())) == 0
    capsysbinary.readouterr()
    assert mailbox.cli("mail", "raw", str(listed["Angebot 2"]["id"])) == 1
    err = capsysbinary.readouterr().err.decode()
    assert "not downloaded yet" in err and err.count("\n") == 1


def _served(box: Mailbox) -> dict[tuple[str, int], bytes]:
    """Every message's bytes as the server serves them, by (folder, UID)."""
    client = box.imap()
    served = {}
    for _, _, name in client.list_folders():
        client.select_folder(name, readonly=True)
        uids = client.search(["ALL"])
        for uid, data in (client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}).items():
            served[(name, uid)] = data[b"BODY[]"]
    client.logout()
    return served


@ON_BOTH
@pytest.mark.parametrize("parsed", ["here", "by the helpers"])
def test_copies_merged_as_one_message_keep_their_own_bytes(
    mailbox: Mailbox,
    capsysbinary: pytest.CaptureFixture[bytes],
    monkeypatch: pytest.MonkeyPatch,
    parsed: str,
) -> None:
    """The same mail (Message-ID and body) in several folders, or twice in one, with other Received lines:
    one message, and ``mail raw ID --folder F [--uid U]`` gives each server copy's own bytes, also offline."""
    from crm_tui.mail.sync import helper_processes

    if parsed == "by the helpers":  # the bodies' bytes are written by the sync's helper processes
        monkeypatch.setattr(helper_processes, "POOL_THRESHOLD", 1)
    body = message(1, mid="<same@firma.example>", body="Das Angebot im Anhang")
    client = mailbox.imap()
    client.create_folder("Kunden")
    for folder, hop in (("INBOX", b"a"), ("Archive", b"c"), ("INBOX", b"e"), ("Kunden", b"a")):
        client.append(
            folder, b"Received: from " + hop + b" by mx; Fri, 20 Nov 2026 10:00:01 +0100\r\n" + body
        )
    client.logout()
    assert mailbox.cli("sync") == 0
    capsysbinary.readouterr()
    assert mailbox.cli("mail", "list", "--json") == 0
    (listed,) = json.loads(capsysbinary.readouterr().out)
    assert len(listed["locations"]) == 4, "one message, four copies"
    served = _served(mailbox)
    assert len(set(served.values())) == 3, "three different byte strings (two copies are alike)"

    def raw(*argv: str) -> tuple[int, bytes, str]:
        code = mailbox.cli("mail", "raw", str(listed["id"]), *argv)
        out, err = capsysbinary.readouterr()
        return code, out, err.decode()

    for place in listed["locations"]:
        code, out, _ = raw("--folder", place["folder"], "--uid", str(place["uid"]))
        assert (code, out) == (0, served[(place["folder"], place["uid"])]), place
    archived = next(served[key] for key in served if key[0] == "Archive")
    assert raw("--folder", "Archive")[:2] == (0, archived), "the only copy in a folder needs no UID"
    assert b"from c by mx" in archived
    code, _, err = raw("--folder", "INBOX")
    assert code == 1 and "2 copies in INBOX" in err and "--uid" in err
    code, _, err = raw("--folder", "Trash")
    assert code == 1 and "no copy in Trash" in err and "Archive UID" in err
    db = mailbox.database()
    with db.read() as session:
        own = session.scalars(select(col(m.MailLocationRaw.raw))).all()
    db.dispose()
    assert len(own) == 2, "only copies that differ from the message's bytes keep their own"
    # Offline: every copy's bytes come from the store.
    from tests.integration.dovecot import free_port

    assert mailbox.cli("account", "edit", "work", "--imap-port", str(free_port())) == 0
    capsysbinary.readouterr()
    for place in listed["locations"]:
        code, out, _ = raw("--folder", place["folder"], "--uid", str(place["uid"]))
        assert (code, out) == (0, served[(place["folder"], place["uid"])]), place


def test_a_copy_merged_before_copies_kept_their_bytes_fetches_them_once(
    mailbox: Mailbox, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """A database from before (schema 0018 marks every copy of a merged message as not known): asked for,
    such a copy's bytes come from the server by its UID, and are kept for the next time."""
    body = message(1, mid="<old@firma.example>", body="Zweimal da")
    mailbox.append("INBOX", b"Received: from a by mx; Fri, 20 Nov 2026 10:00:01 +0100\r\n" + body)
    mailbox.append("Archive", b"Received: from b by mx; Fri, 20 Nov 2026 10:00:02 +0100\r\n" + body)
    assert mailbox.cli("sync") == 0
    db = mailbox.database()
    with db.write() as session:  # as the migration leaves a message merged before it
        session.execute(delete(m.MailLocationRaw))
        for (location_id,) in session.execute(select(col(m.MailLocation.id))):
            session.add(m.MailLocationRaw(location_id=location_id, raw=None))
    served = _served(mailbox)
    capsysbinary.readouterr()
    for folder in ("INBOX", "Archive"):
        assert mailbox.cli("mail", "raw", "1", "--folder", folder) == 0
        assert capsysbinary.readouterr().out == next(served[key] for key in served if key[0] == folder)
    with db.read() as session:
        kept = {row.raw for row in session.scalars(select(m.MailLocationRaw))}
    db.dispose()
    assert len(kept) == 1 and None not in kept, "the copy whose bytes differ keeps them; the other needs none"
    from tests.integration.dovecot import free_port

    assert mailbox.cli("account", "edit", "work", "--imap-port", str(free_port())) == 0
    capsysbinary.readouterr()
    for folder in ("INBOX", "Archive"):
        assert mailbox.cli("mail", "raw", "1", "--folder", folder) == 0, "offline: from the store now"
        assert capsysbinary.readouterr().out == next(served[key] for key in served if key[0] == folder)


def test_one_listing_tells_each_folders_state_as_select_does(mailbox: Mailbox) -> None:
    """LIST-STATUS: the state of every folder in one round trip, the same as selecting each one gives."""
    from crm_tui.mail.sync.folders import list_folders_with_state, state_of_select

    client = mailbox.imap()
    for name in ("Entwürfe 2026", "2024", "Kunden/Müller & Söhne"):
        client.create_folder(name)
    client.append("Entwürfe 2026", message(1))
    for n in range(2, 5):
        client.append("INBOX", message(n))
    client.enable("CONDSTORE")
    listing, states = list_folders_with_state(client, condstore=True)
    names = [name for _, _, name in listing]
    plain = {name: flags for flags, _, name in client.list_folders()}
    assert set(names) == set(plain), "the same folders as LIST gives"
    for flags, _, name in listing:
        roles = {f for f in plain[name] if f in (b"\\Sent", b"\\Trash", b"\\Archive")}
        assert roles <= set(flags), f"{name} keeps its special use"
        if b"\\Noselect" in plain[name]:
            assert {b"\\Noselect", b"\\NonExistent"} & set(flags), f"{name} stays unselectable"
        else:
            assert name in states
    assert {"INBOX", "Entwürfe 2026", "2024", "Kunden/Müller & Söhne", "Sent"} <= set(states)
    for name in states:
        assert states[name] == state_of_select(client.select_folder(name, readonly=True), True), name
    assert states["INBOX"].messages == 3 and states["Entwürfe 2026"].messages == 1
    assert states["2024"].messages == 0 and states["2024"].highestmodseq is not None
    client.logout()


@pytest.mark.parametrize("listing", ["list-status", "plain list"])
def test_a_resync_opens_only_the_folders_that_changed(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, listing: str
) -> None:
    """With LIST-STATUS a pass selects only the folders whose state changed; without it (a server that does
    not offer it, played by a proxy that hides the word) every folder is selected. The mail is the same."""
    import imapclient

    from tests.integration.proxy import DroppingProxy

    proxy = None
    if listing == "plain list":
        proxy = DroppingProxy(mailbox.server.port, hide=b" LIST-STATUS")
        assert mailbox.cli("account", "edit", "work", "--imap-port", str(proxy.port)) == 0
    selected: list[str] = []
    select = imapclient.IMAPClient.select_folder

    def counting(self: Any, folder: str, readonly: bool = False) -> Any:  # imapclient ships no types
        selected.append(folder)
        return select(self, folder, readonly)

    monkeypatch.setattr(imapclient.IMAPClient, "select_folder", counting)
    try:
        mailbox.append("INBOX", message(1, mid="<r1@firma.example>"))
        mailbox.append("Archive", message(2, mid="<r2@firma.example>"))
        assert mailbox.cli("sync") == 0
        everything = {"INBOX", "Sent", "Trash", "Archive"}
        assert set(selected) == ({"INBOX", "Archive"} if proxy is None else everything), (
            "empty folders are not opened when the listing tells their state"
        )
        selected.clear()
        assert mailbox.cli("sync") == 0
        assert selected == ([] if proxy is None else sorted(everything, key=lambda n: (n != "INBOX", n)))
        assert "4 folders (4 unchanged)" in capsys.readouterr().out
        mailbox.append("Archive", message(3, mid="<r3@firma.example>"))
        client = mailbox.imap()
        client.select_folder("INBOX")
        client.delete_messages(client.search(["ALL"]))
        client.expunge()
        client.logout()
        selected.clear()
        assert mailbox.cli("sync") == 0
        if proxy is None:
            assert set(selected) == {"Archive", "INBOX"}, "the emptied folder is opened, to see what went"
        listed = mail_json(mailbox, capsys, "mail", "list")
        assert sorted(item["subject"] for item in listed) == ["Angebot 2", "Angebot 3"]
    finally:
        if proxy is not None:
            proxy.close()
