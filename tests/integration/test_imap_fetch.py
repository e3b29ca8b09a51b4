"""The sync's FETCH reader gives what imapclient's gives, on replies from the real Dovecot."""

from __future__ import annotations

from crm_tui.mail import imap_fetch
from crm_tui.mail.headers import HEADER_SECTION
from crm_tui.mail.imap_session import ImapSession
from tests.integration.conftest import Mailbox
from tests.integration.test_sync import corpus_messages


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
        ([f"BODY.PEEK[{HEADER_SECTION}]", "RFC822.SIZE", "FLAGS", "MODSEQ"], None),  # the header pass's
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
    assert ImapSession(client).kept_untagged("EXISTS")[-1] == str(len(files) + 1).encode()
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


def test_the_header_fields_alone_give_the_rows_the_whole_header_gives(mailbox: Mailbox) -> None:
    """The header pass asks the server for the fields the list shows, not whole header blocks: for every corpus
    message the stored header values are the same either way (problems aside: the body pass records those),
    except where a broken line elsewhere in the block makes the email package drop every field: there the
    fields alone still read (three corpus messages), until the body pass stores the full parse's reading."""
    from crm_tui.core.mail_data import HEADER_COLUMNS, header_values
    from crm_tui.mail.parse import parse_header_block

    client = mailbox.imap()
    files = corpus_messages()
    for path in files:
        client.append("INBOX", path.read_bytes())
    client.select_folder("INBOX", readonly=True)
    uids = client.search(["ALL"])
    whole = imap_fetch.fetch(client, uids, ["BODY.PEEK[HEADER]"])
    fields = imap_fetch.fetch(client, uids, [f"BODY.PEEK[{HEADER_SECTION}]"])
    client.logout()
    kept = [i for i, name in enumerate(HEADER_COLUMNS) if name != "parse_problems"]
    differ, recovered = [], []
    for uid in uids:
        full = header_values(parse_header_block(whole[uid][b"BODY[HEADER]"]))
        few = header_values(parse_header_block(fields[uid][f"BODY[{HEADER_SECTION}]".encode()]))
        if [full[i] for i in kept] == [few[i] for i in kept]:
            continue
        if all(not full[i] for i in kept):
            recovered.append(files[uid - 1].name)  # the whole block read as nothing at all
        else:
            differ.append((files[uid - 1].name, [HEADER_COLUMNS[i] for i in kept if full[i] != few[i]]))
    assert len(uids) == len(files) and not differ, differ[:5]
    assert len(recovered) <= 3, recovered


def test_the_helpers_header_rows_are_what_imapclient_and_the_full_parser_give(mailbox: Mailbox) -> None:
    """The header pass reads the server's replies in the sync's process and decodes and parses them in its
    helper (``headers.header_rows``, from plain bytes that cross between processes). For every corpus message,
    with flags and CONDSTORE, each row is what imapclient's own FETCH and the guarded parser give; a message
    expunged meanwhile has no row; replies the fast reader does not know go to imapclient's reader."""
    import pickle

    from crm_tui.core.mail_data import header_values
    from crm_tui.mail.headers import header_rows
    from crm_tui.mail.parse import parse_header_block

    client = mailbox.imap()
    files = corpus_messages()
    for index, path in enumerate(files):
        client.append("INBOX", path.read_bytes(), flags=(b"\\Seen",) if index % 2 else ())
    client.enable("CONDSTORE")
    client.select_folder("INBOX")
    uids = client.search(["ALL"])
    items = [f"BODY.PEEK[{HEADER_SECTION}]", "RFC822.SIZE", "FLAGS", "MODSEQ"]
    expected = []
    for uid, data in sorted(client.fetch(uids, items).items()):
        header = data[f"BODY[{HEADER_SECTION}]".encode()]
        flags = [flag.decode() for flag in data[b"FLAGS"]]
        expected.append(
            (uid, flags, data[b"MODSEQ"][0], header_values(parse_header_block(header)), data[b"RFC822.SIZE"])
        )
    asked = [*uids, 999_999]  # the last one is gone
    replies = imap_fetch.receive_replies(client, imap_fetch.send(client, asked, items))
    assert header_rows(pickle.loads(pickle.dumps(replies)), asked) == expected
    assert any("\\Seen" in row[1] for row in expected) and len(expected) == len(files)
    # With an item the fast reader does not read, imapclient's reader decodes the same rows.
    odd = imap_fetch.receive_replies(client, imap_fetch.send(client, uids, [*items, "INTERNALDATE"]))
    assert imap_fetch.read_reply(odd) is None
    assert header_rows(odd, uids) == expected
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


def test_a_helper_asks_for_its_next_batch_ahead_and_never_mixes_batches_up(mailbox: Mailbox) -> None:
    """The body fetcher sends the FETCH of the batch it gets next before it parses the current one. Each call
    returns exactly its own UIDs' bytes as served: when the batch asked ahead comes, when another one comes
    instead (the sync stopped: the answer asked ahead is read away), and when the link drops meanwhile."""
    from crm_tui.mail.imap import Endpoint
    from crm_tui.mail.sync import body_fetcher as fetcher
    from tests.integration.proxy import DroppingProxy
    from tests.integration.test_sync import message

    client = mailbox.imap()
    for n in range(12):
        client.append("INBOX", message(n, mid=f"<a{n}@firma.example>", body="Zeile. " * 400))
    state = client.select_folder("INBOX", readonly=True)
    uids = sorted(client.search(["ALL"]))
    served = {uid: data[b"BODY[]"] for uid, data in client.fetch(uids, ["BODY.PEEK[]"]).items()}
    client.logout()
    uidvalidity = int(state[b"UIDVALIDITY"])

    def bodies(endpoint: Endpoint, batch: list[int], ahead: list[int] | None = None) -> dict[int, bytes]:
        status, rows = fetcher.fetch_and_parse(
            endpoint, mailbox.password, "INBOX", uidvalidity, batch, None, ahead
        )
        assert status == "ok", rows
        return {uid: raw for uid, raw, _ in rows}

    def expected(batch: list[int]) -> dict[int, bytes]:
        return {uid: served[uid] for uid in batch}

    direct = Endpoint("ahead", "127.0.0.1", mailbox.server.port, "none", mailbox.user)
    try:
        assert bodies(direct, uids[0:3], ahead=uids[3:6]) == expected(uids[0:3])
        assert fetcher._AHEAD, "the next batch was asked for"
        assert bodies(direct, uids[3:6], ahead=uids[6:9]) == expected(uids[3:6])  # the one asked ahead
        assert bodies(direct, uids[9:12]) == expected(uids[9:12]), "another batch than the one asked ahead"
        assert not fetcher._AHEAD
        assert bodies(direct, uids[6:9]) == expected(uids[6:9]), "the connection is in step again"
    finally:
        fetcher.close_all()
    proxy = DroppingProxy(mailbox.server.port, drop_after=14_000, drops=1)  # in the batch asked ahead
    dropping = Endpoint("dropping", "127.0.0.1", proxy.port, "none", mailbox.user)
    try:
        assert bodies(dropping, uids[0:3], ahead=uids[3:6]) == expected(uids[0:3])
        assert bodies(dropping, uids[3:6], ahead=uids[6:9]) == expected(uids[3:6])
        assert bodies(dropping, uids[6:9]) == expected(uids[6:9])
        assert proxy.dropped == 1, "the link dropped on the way, and the fetcher asked again"
    finally:
        fetcher.close_all()
        proxy.close()
