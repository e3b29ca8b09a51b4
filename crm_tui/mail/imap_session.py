"""The one place that reaches into imaplib's and imapclient's private internals.

imapclient offers no way to send a command and read its answer apart (the sync sends a batch's FETCH before it
reads the one before), no extended LIST (``LIST "" "*" RETURN (...)``: the folders' states or special uses in
the same round trip), and it turns on imaplib's debug output, which formats every line read for a log nobody
reads. ``ImapSession`` does these with the libraries' private methods and attributes; everything else in
crm-tui uses only their public API (``IMAPClient``'s methods). ``tests/integration/test_imap_session.py`` checks
that each private name used here still exists with the signature relied on, and makes a round trip through
each method against the test Dovecot: a library upgrade that changes them fails there, loudly, not in a sync.

Only the standard library loads here (the sync's helper process reads replies through it and starts fast).
"""

from __future__ import annotations

import re
from typing import Any

_UNTAGGED_FETCH = re.compile(rb"\* (\d+) FETCH (.*)\Z", re.DOTALL)
_LITERAL_SIZE = re.compile(rb"\{(\d+)\}\Z")


class ImapSession:
    """A logged-in ``IMAPClient`` (``client``) seen through the internals the sync needs. Cheap to make: a
    wrapper around the client, made where it is needed; the connection stays the client's."""

    __slots__ = ("client", "_imap")

    def __init__(self, client: Any) -> None:
        self.client = client
        self._imap = client._imap  # imaplib.IMAP4 under imapclient

    def quiet(self) -> None:
        """Turn off imaplib's debug output (imapclient turns it on to feed its logger): every line read was
        formatted for a log nobody reads (a tenth of a header pass)."""
        self._imap.debug = 0

    # --- extended LIST ---

    def list_returning(self, options: str) -> tuple[list[Any], list[Any]]:
        """``LIST "" "*" RETURN (options)`` (RFC 5258): the folders as ``list_folders()`` gives them, and the
        untagged STATUS replies that came with them (RFC 5819, for ``RETURN (STATUS (...))``), unparsed. A NO
        or BAD raises imapclient's error, as ``list_folders`` would."""
        client, imap = self.client, self._imap
        typ, data = imap._simple_command(
            "LIST", client._normalise_folder(""), client._normalise_folder("*"), "RETURN", f"({options})"
        )
        client._checkok("list", typ, data)
        _, listing = imap._untagged_response(typ, data, "LIST")
        statuses = [item for item in imap.untagged_responses.pop("STATUS", []) if item not in (b"", None)]
        return client._proc_folder_list(listing), statuses

    # --- a command sent now, its answer read later ---

    def send(self, *arguments: str) -> bytes:
        """Send a command (its words); its tag, for ``fetch_replies``. Meanwhile the server prepares the
        answer."""
        tag: bytes = self._imap._command(*arguments)
        return tag

    def kept_untagged(self, kind: str) -> list[Any]:
        """The untagged replies of ``kind`` (EXISTS, EXPUNGE...) received and kept for the client, unread."""
        return list(self._imap.untagged_responses.get(kind, []))

    def fetch_replies(self, tag: bytes) -> list[Any]:
        """Read the server's answer to the FETCH command ``tag`` straight from the connection's buffered file,
        as imaplib's ``_command_complete`` + ``_untagged_response`` would give it: each reply's text, with
        literals as (text up to the literal, literal) pairs. imaplib does the same reading with a dozen regular
        expressions and list operations a line (a third of a header pass's reading time); other untagged
        answers (EXISTS, EXPUNGE...) go where imaplib keeps them. A NO/BAD answer raises imaplib's error, a
        lost link its abort."""
        imap = self._imap
        read_line, read = imap.file.readline, imap.file.read
        data: list[Any] = []
        prefix = tag + b" "
        while True:
            line = read_line(1_000_000)
            if not line.endswith(b"\r\n"):
                raise imap.abort("socket error: EOF" if not line else "socket error: unterminated line")
            line = line[:-2]
            if line.startswith(prefix):
                imap.tagged_commands.pop(tag, None)
                status, _, text = line[len(prefix) :].partition(b" ")
                if status != b"OK":
                    raise imap.error(f"fetch failed: {text.decode('utf-8', 'replace')}")
                return data
            fetch = _UNTAGGED_FETCH.match(line)
            if fetch is None:
                if line.startswith(b"* BYE"):
                    raise imap.abort(line.decode("utf-8", "replace"))
                if line.startswith(b"* "):
                    first, _, rest = line[2:].partition(b" ")
                    # "* 12 EXISTS" is kept as EXISTS: 12; "* OK [...] text" as OK: "[...] text" (as imaplib does)
                    kind, value = (rest.partition(b" ")[0], first) if first.isdigit() else (first, rest)
                    name = kind.decode("ascii", "replace").upper()
                    imap.untagged_responses.setdefault(name, []).append(value)
                continue
            text = fetch.group(1) + b" " + fetch.group(2)
            while True:
                size = _LITERAL_SIZE.search(text)
                if size is None:
                    data.append(text)
                    break
                literal = read(int(size.group(1)))
                data.append((text, literal))
                text = read_line(1_000_000)
                if not text.endswith(b"\r\n"):
                    raise imap.abort("socket error: EOF")
                text = text[:-2]
                if not _LITERAL_SIZE.search(text):
                    data.append(text)
                    break
