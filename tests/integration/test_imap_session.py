"""The private internals of imaplib and imapclient that ``mail.imap_session`` relies on are still there, as it
uses them, and each of its methods makes a real round trip with the test Dovecot. A library upgrade that
changes any of them fails here, loudly, rather than in a user's sync."""

from __future__ import annotations

import ast
import imaplib
import inspect
from collections.abc import Callable
from pathlib import Path

import imapclient

from crm_tui.mail import imap_session
from crm_tui.mail.imap_session import ImapSession
from tests.integration.conftest import Mailbox
from tests.integration.test_sync import message

# Each private method used, with the parameters it is called with.
IMAPLIB_METHODS = {
    "_command": ["self", "name", "*args"],
    "_simple_command": ["self", "name", "*args"],
    "_untagged_response": ["self", "typ", "dat", "name"],
}
IMAPCLIENT_METHODS = {
    "_checkok": ["self", "command", "typ", "data"],
    "_normalise_folder": ["self", "folder_name"],
    "_proc_folder_list": ["self", "folder_data"],
}
# Attributes of a connected client used: imapclient's ``_imap`` (the imaplib.IMAP4), and on that one these.
IMAPLIB_STATE = {"file", "tagged_commands", "untagged_responses", "debug", "abort", "error"}


def _parameters(function: Callable[..., object]) -> list[str]:
    return [
        ("*" if p.kind is p.VAR_POSITIONAL else "") + p.name
        for p in inspect.signature(function).parameters.values()
    ]


def test_the_private_methods_are_there_with_the_signatures_used() -> None:
    for name, parameters in IMAPLIB_METHODS.items():
        assert _parameters(getattr(imaplib.IMAP4, name)) == parameters, f"imaplib.IMAP4.{name} changed"
    for name, parameters in IMAPCLIENT_METHODS.items():
        assert _parameters(getattr(imapclient.IMAPClient, name)) == parameters, f"IMAPClient.{name} changed"
    assert issubclass(imaplib.IMAP4.abort, imaplib.IMAP4.error)


def test_the_session_uses_no_private_name_this_test_does_not_guard() -> None:
    """Every ``._name`` the module reaches (other than its own slot) is one of the guarded ones: a new use of
    an internal must be added here, so that it is guarded too."""
    tree = ast.parse(Path(imap_session.__file__).read_text())
    used = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id == "self")
    }
    assert used <= {*IMAPLIB_METHODS, *IMAPCLIENT_METHODS, "_imap"}, used


def test_each_method_makes_a_round_trip_with_dovecot(mailbox: Mailbox) -> None:
    for n in range(3):
        mailbox.append("INBOX", message(n, mid=f"<s{n}@firma.example>"), flags=(("\\Seen",) if n else ()))
    client = mailbox.imap()
    try:
        assert set(dir(client._imap)) >= IMAPLIB_STATE, "imaplib's connection state"
        session = ImapSession(client)
        session.quiet()
        assert client._imap.debug == 0
        client.create_folder("Kunden/Müller & Söhne")

        # Extended LIST: the folders as list_folders() gives them, and their STATUS when asked.
        plain = client.list_folders()
        listing, statuses = session.list_returning("SPECIAL-USE")
        assert sorted((d, n) for _, d, n in listing) == sorted((d, n) for _, d, n in plain)
        assert "Kunden/Müller & Söhne" in [name for _, _, name in listing], (
            "names decoded as list_folders does"
        )
        assert statuses == []
        listing, statuses = session.list_returning("STATUS (MESSAGES UIDVALIDITY)")
        assert sorted(name for _, _, name in listing) == sorted(name for _, _, name in plain)
        assert 0 < len(statuses) <= len(listing), "one STATUS a selectable folder"
        assert any(b"INBOX" in status and b"MESSAGES 3" in status for status in statuses), statuses

        # A command sent now, its replies read later: the same as imapclient's fetch, and the connection in step.
        client.select_folder("INBOX")
        uids = client.search(["ALL"])
        tag = session.send("UID", "FETCH", ",".join(map(str, uids)), "(FLAGS BODY.PEEK[])")
        replies = session.fetch_replies(tag)
        from imapclient.response_parser import parse_fetch_response

        assert parse_fetch_response(replies, True, True) == client.fetch(uids, ["FLAGS", "BODY.PEEK[]"])
        # Other untagged replies are kept where imaplib keeps them.
        other = mailbox.imap()
        other.append("INBOX", message(9, mid="<s9@firma.example>"))
        other.logout()
        assert session.fetch_replies(session.send("NOOP")) == []
        assert session.kept_untagged("EXISTS")[-1] == b"4"
        assert client.select_folder("INBOX")[b"EXISTS"] == 4, "the connection reads on in step"
    finally:
        client.logout()
