"""The body fetcher that runs in the sync's helper process: it fetches a batch of bodies over its own IMAP
connection and parses them, while the main process stores the previous batch.

Why: fetching (imapclient turning the server's reply into Python objects) and parsing cost about as much CPU
as storing does; on two cores the sync is fastest when the network and the parser work in one process and the
database in the other. This module imports only imapclient, the email package and the parser (no database
layer), so the helper process starts fast. Results are plain data: ("ok", rows), ("uidvalidity", None) when the
folder changed under us, or ("error", (message, kind)) — exceptions do not cross the process boundary.
"""

from __future__ import annotations

import time
from typing import Any

from crm_tui.core.mail_identity import body_hash
from crm_tui.mail import imap_fetch
from crm_tui.mail.imap import Endpoint, MailConnectionError, connect, logout
from crm_tui.mail.parse import parse_safely

ATTEMPTS = 3
_CLIENTS: dict[tuple[str, str, int, str], Any] = {}


def connected(endpoint: Endpoint, password: str) -> Any:
    """This helper's logged-in connection for ``endpoint`` (made on first use, then kept)."""
    key = (endpoint.account, endpoint.host, endpoint.port, endpoint.username)
    client = _CLIENTS.get(key)
    if client is None:
        client = connect(endpoint, password)
        _CLIENTS[key] = client
    return client


def _drop(endpoint: Endpoint) -> None:
    client = _CLIENTS.pop((endpoint.account, endpoint.host, endpoint.port, endpoint.username), None)
    if client is not None:
        logout(client)


def fetch_and_parse(
    endpoint: Endpoint, password: str, folder: str, uidvalidity: int, uids: list[int]
) -> tuple[str, Any]:
    """Fetch and parse the bodies of ``uids``: [(uid, raw bytes, parsed data without the bytes)]."""
    error: Exception | None = None
    for attempt in range(ATTEMPTS):
        try:
            client = connected(endpoint, password)
            state = client.select_folder(folder, readonly=True)
            if int(state[b"UIDVALIDITY"]) != uidvalidity:
                return ("uidvalidity", None)
            fetched = imap_fetch.fetch(client, uids, ["BODY.PEEK[]"])
        except MailConnectionError as exc:
            return ("error", (str(exc), exc.kind))
        except Exception as exc:  # noqa: BLE001 - a dropped link (OSError, imaplib's abort): reconnect and retry
            error = exc
            _drop(endpoint)
            time.sleep(0.2 * (attempt + 1))
            continue
        rows = []
        for uid in uids:
            raw = fetched.get(uid, {}).get(b"BODY[]")
            if not raw:
                continue  # expunged meanwhile
            data = parse_safely(raw)
            data.body_hash = body_hash(raw, has_message_id=bool(data.message_id))  # here, not in the writer
            data.raw = b""  # the bytes travel once, beside the parsed data
            rows.append((uid, raw, data))
        return ("ok", rows)
    return (
        "error",
        (f"{endpoint.account}: the connection dropped ({error}); what arrived is kept", "dropped"),
    )


def close_all() -> None:
    for key in list(_CLIENTS):
        client = _CLIENTS.pop(key)
        logout(client)
