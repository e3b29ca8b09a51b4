"""The body fetcher that runs in the sync's helper process: it fetches a batch of bodies over its own IMAP
connection and parses them, while the main process stores the previous batch. As soon as a batch has arrived
it sends the FETCH of the batch it will get next, so the server reads that one while this one is parsed; on
SQLite it also writes the bytes into the database itself (``mail.store.raw_writer``).

Why: fetching (imapclient turning the server's reply into Python objects) and parsing cost about as much CPU
as storing does; on two cores the sync is fastest when the network and the parser work in one process and the
database in the other. This module imports only imapclient, the email package and the parser (no database
layer), so the helper process starts fast. Results are plain data: ("ok", rows), ("uidvalidity", None) when the
folder changed under us, or ("error", (message, kind)) — exceptions do not cross the process boundary.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from crm_tui.core.mail_identity import body_hash
from crm_tui.mail import imap_fetch
from crm_tui.mail.imap import Endpoint, MailConnectionError, connect, logout
from crm_tui.mail.parse import parse_safely
from crm_tui.mail.store import raw_writer

ATTEMPTS = 3
_CLIENTS: dict[tuple[str, str, int, str], Any] = {}
# A FETCH sent ahead on a connection: (folder, UIDVALIDITY, UIDs) -> its tag (at most one per connection).
_AHEAD: dict[tuple[str, str, int, str], tuple[tuple[str, int, tuple[int, ...]], bytes]] = {}


def _key(endpoint: Endpoint) -> tuple[str, str, int, str]:
    return (endpoint.account, endpoint.host, endpoint.port, endpoint.username)


def connected(endpoint: Endpoint, password: str) -> Any:
    """This helper's logged-in connection for ``endpoint`` (made on first use, then kept)."""
    key = _key(endpoint)
    client = _CLIENTS.get(key)
    if client is None:
        client = connect(endpoint, password)
        _CLIENTS[key] = client
    return client


def _drop(endpoint: Endpoint) -> None:
    _AHEAD.pop(_key(endpoint), None)
    client = _CLIENTS.pop(_key(endpoint), None)
    if client is not None:
        logout(client)


def fetch_and_parse(
    endpoint: Endpoint,
    password: str,
    folder: str,
    uidvalidity: int,
    uids: list[int],
    raw_into: tuple[str, list[int]] | None = None,
    ahead: list[int] | None = None,
) -> tuple[str, Any]:
    """Fetch and parse the bodies of ``uids``: [(uid, raw bytes, parsed data without the bytes)].

    ``raw_into`` (a SQLite database's path, the message id of each UID): the bytes are stored there
    (``mail.store.raw_writer``) and come back empty, their length in the parsed data's ``size``. Should that write
    fail, they come back as usual and the sync stores them (and reports what it cannot).

    ``ahead``: the UIDs (same folder) this helper will be asked for next. Their FETCH is sent as soon as this
    batch has arrived, so the server reads them while this batch is parsed; the next call receives them."""
    error: Exception | None = None
    for attempt in range(ATTEMPTS):
        try:
            client = connected(endpoint, password)
            sent = _AHEAD.pop(_key(endpoint), None)
            if sent is not None and sent[0] == (folder, uidvalidity, tuple(uids)):
                fetched = imap_fetch.receive(client, sent[1], uids)  # sent ahead, in this folder as selected
            else:
                if sent is not None:  # asked ahead for what did not come (a sync that stopped): read it away
                    imap_fetch.receive(client, sent[1], list(sent[0][2]))
                state = client.select_folder(folder, readonly=True)
                if int(state[b"UIDVALIDITY"]) != uidvalidity:
                    return ("uidvalidity", None)
                fetched = imap_fetch.fetch(client, uids, ["BODY.PEEK[]"])
            if ahead:
                _AHEAD[_key(endpoint)] = (
                    (folder, uidvalidity, tuple(ahead)),
                    imap_fetch.send(client, ahead, ["BODY.PEEK[]"]),
                )
        except MailConnectionError as exc:
            return ("error", (str(exc), exc.kind))
        except Exception as exc:  # noqa: BLE001 - a dropped link (OSError, imaplib's abort): reconnect and retry
            error = exc
            _drop(endpoint)
            time.sleep(0.2 * (attempt + 1))
            continue
        rows = []
        for uid in uids:
            reply = fetched.get(uid)
            if reply is None or b"BODY[]" not in reply:
                continue  # expunged meanwhile
            raw = reply[b"BODY[]"] or b""  # a message of 0 bytes is one too: stored, with its problem
            data = parse_safely(raw)
            data.body_hash = body_hash(raw, has_message_id=bool(data.message_id))  # here, not in the writer
            data.raw = b""  # the bytes travel once, beside the parsed data
            data.size = len(raw)
            rows.append((uid, raw, data))
        if raw_into is not None and rows:
            path, message_ids = raw_into
            message_of = dict(zip(uids, message_ids, strict=True))
            try:
                raw_writer.store(path, [(message_of[uid], raw) for uid, raw, _ in rows])
            except (sqlite3.Error, OSError):
                return ("ok", rows)
            rows = [(uid, b"", data) for uid, _, data in rows]
        return ("ok", rows)
    return (
        "error",
        (f"{endpoint.account}: the connection dropped ({error}); what arrived is kept", "dropped"),
    )


def close_all() -> None:
    _AHEAD.clear()
    for key in list(_CLIENTS):
        client = _CLIENTS.pop(key)
        logout(client)
    raw_writer.close_all()
