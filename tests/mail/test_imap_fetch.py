"""The sync's FETCH reader gives what imapclient's gives, on replies from the real Dovecot."""

from __future__ import annotations

from crm_tui.mail import imap_fetch
from tests.mail.conftest import Mailbox
from tests.mail.test_sync import corpus_messages


def test_the_fast_fetch_reader_equals_imapclients_on_real_replies(mailbox: Mailbox) -> None:
    client = mailbox.imap()
    files = corpus_messages()
    for index, path in enumerate(files):
        flags = (b"\\Seen", b"$Forwarded") if index % 3 == 0 else ((b"\\Flagged",) if index % 3 == 1 else ())
        client.append("INBOX", path.read_bytes(), flags=flags)
    client.enable("CONDSTORE")
    state = client.select_folder("INBOX")
    uids = client.search(["ALL"])
    assert len(uids) == len(files) > 200
    client.add_flags(uids[:5], [b"\\Answered"])
    asks = [
        (["BODY.PEEK[HEADER]", "RFC822.SIZE", "FLAGS", "MODSEQ"], None),
        (["BODY.PEEK[]"], None),
        (["FLAGS"], None),
        (["FLAGS"], [f"CHANGEDSINCE {int(state[b'HIGHESTMODSEQ'])}"]),
        (["INTERNALDATE", "FLAGS"], None),  # not the fast reader's: imapclient's reads it
    ]
    for items, modifiers in asks:
        fast = imap_fetch.fetch(client, uids, items, modifiers)
        assert fast == client.fetch(uids, items, modifiers=modifiers), items
        assert fast, items
    # Messages gone meanwhile are simply absent, as with imapclient.
    assert imap_fetch.fetch(client, [uids[0], 999_999], ["FLAGS"]).keys() == {uids[0]}
    # Mail arriving meanwhile is announced within the FETCH answer; imaplib keeps the count as it would, and
    # the connection reads on in step.
    other = mailbox.imap()
    other.append("INBOX", files[0].read_bytes())
    other.logout()
    assert imap_fetch.fetch(client, uids[:3], ["FLAGS"]).keys() == set(uids[:3])
    assert client._imap.untagged_responses["EXISTS"][-1] == str(len(files) + 1).encode()
    assert client.select_folder("INBOX")[b"EXISTS"] == len(files) + 1
    # A command the server refuses raises imaplib's error, and the connection stays usable.
    import imaplib

    try:
        imap_fetch.fetch(client, uids[:2], ["BODY.PEEK[NOSUCHSECTION]"])
    except imaplib.IMAP4.error as exc:
        assert "fetch failed" in str(exc)
    else:
        raise AssertionError("a refused FETCH must raise")
    assert imap_fetch.fetch(client, uids[:2], ["FLAGS"]).keys() == set(uids[:2])
    client.logout()


def test_the_fast_reader_declines_what_it_does_not_know() -> None:
    assert (
        imap_fetch.read_reply([b'1 (UID 1 FLAGS (\\Seen) INTERNALDATE "01-Jan-2026 10:00:00 +0000")']) is None
    )
    assert imap_fetch.read_reply([(b"1 (UID 1 BODY[] {5}", b"abc"), b")"]) is None, (
        "literal of the wrong size"
    )
    assert imap_fetch.read_reply([b"1 (FLAGS (\\Seen))"]) is None, "no UID: imapclient decides"
    assert imap_fetch.read_reply([(b"1 (UID 1 BODY[] {3}", b"abc"), b")"]) == {
        1: {b"SEQ": 1, b"BODY[]": b"abc"}
    }
