"""The header pass's parsing: a header block's fields, decoded into the stored values of the message list's
columns, and a batch of FETCH replies turned into rows. The sync's helper process runs this from its start.

The field decoders it shares with the guarded parser (``parse``) are in ``header_decoding``. Only the
standard library's light modules load here (``re``, ``datetime``, ``binascii``): the email package
(30-60 ms to import) loads only when a header needs it, so a helper process is ready to parse about 45 ms
sooner, and spends those 45 ms of CPU later, while the bodies load, not while the header pass runs on both
cores. Everyday headers take the fast paths here; whatever is unusual goes to the email package (``parse``),
with the same result (tests compare both on the corpus).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crm_tui.core.mail_data import header_values
from crm_tui.core.mail_identity import no_nul, subject_key
from crm_tui.mail import imap_fetch
from crm_tui.mail.header_decoding import (
    HEADER_FIELDS,
    MAX_HEADER_CHARS,
    address_pairs,
    date_value,
    decoded_words,
    formatted_address,
    message_ids_in,
    split_headers,
    undeliverable,
)

if TYPE_CHECKING:
    from typing import Any


def header_block_values(raw: bytes) -> tuple[Any, ...]:
    """``header_values(parse_header_block(raw))``, a quarter quicker for an everyday block: its fields are
    decoded straight into the stored values, by the same decoders without their per-field guards (the
    closures and the ``MessageData`` cost 5 of a header's 22 µs; one helper parses a whole header pass).
    Whatever raises, or would be recorded as a problem, sends the block to the guarded path: so the result
    is the same (a test compares the two on the corpus)."""
    fields = split_headers(raw)
    if fields is not None:
        try:
            return _quick_values(fields)
        except Exception:  # noqa: BLE001, S110 - the guarded path below decides, and records the problem
            pass
    # Here, not at the top: the guarded parser loads the email package (30-60 ms), which a helper process
    # starts without (see above).
    from crm_tui.mail.parse import parse_header_block

    return header_values(parse_header_block(raw))


def _quick_values(fields: dict[str, list[str]]) -> tuple[Any, ...]:
    senders = _addresses(fields.get("from"))[0]
    from_name, from_address = senders[0] if senders else ("", "")
    to, cc = _addresses(fields.get("to")), _addresses(fields.get("cc"))
    if undeliverable(senders) or undeliverable(to[0]) or undeliverable(cc[0]):
        raise ValueError("an address without a domain")  # a problem to record: the guarded path does
    subject = _first(fields, "subject")
    subject = (
        no_nul(" ".join(decoded_words(subject).split())[:MAX_HEADER_CHARS]) if subject is not None else ""
    )
    date = _first(fields, "date")
    sent_at = date_value(date) if date else None  # an implausible year raises: the guarded path records it
    message_ids = message_ids_in(_first(fields, "message-id"))
    replied_to = message_ids_in(_first(fields, "in-reply-to"))
    return (
        message_ids[0] if message_ids else None,
        subject,
        subject_key(subject),
        from_name,
        from_address.lower(),
        to[1],
        cc[1],
        sent_at,
        replied_to[0] if replied_to else None,
        "\n".join(message_ids_in(_first(fields, "references"))) or None,
        None,
    )


def _first(fields: dict[str, list[str]], name: str) -> str | None:
    """A field's first value (cut to a sane length), or None when the block has none."""
    values = fields.get(name)
    return values[0][: MAX_HEADER_CHARS * 4] if values else None


_NO_ADDRESSES: tuple[tuple[tuple[str, str], ...], str] = ((), "")
_ADDRESS_CACHE: dict[str, tuple[tuple[tuple[str, str], ...], str]] = {}
_ADDRESS_CACHE_SIZE = 4096


def _addresses(values: list[str] | None) -> tuple[tuple[tuple[str, str], ...], str]:
    """An address field's (name, address) pairs and their stored text (one per line). The same value comes
    again and again in a mailbox (my own address in To, a customer's From), so the last few thousand are
    kept: a value read again costs a dictionary look-up instead of 2-3 µs."""
    if not values:
        return _NO_ADDRESSES
    key = values[0] if len(values) == 1 else None
    if key is not None:
        known = _ADDRESS_CACHE.get(key)
        if known is not None:
            return known
    pairs = tuple(address_pairs([value[: MAX_HEADER_CHARS * 16] for value in values], decoded_words))
    result = (pairs, "\n".join([formatted_address(pair) for pair in pairs]))
    if key is not None:
        if len(_ADDRESS_CACHE) >= _ADDRESS_CACHE_SIZE:
            _ADDRESS_CACHE.clear()
        _ADDRESS_CACHE[key] = result
    return result


# The header pass asks for the fields the list shows, not whole header blocks: real mail's blocks are mostly
# Received, DKIM and ARC lines (kilobytes a message), and a server keeps these fields in its cache (Dovecot
# answered 10,000 in 0.05-0.06 s against 0.12-0.15 s for the blocks). The body brings the rest.
HEADER_SECTION = f"HEADER.FIELDS ({' '.join(HEADER_FIELDS).upper()})"
_HEADER_KEY = f"BODY[{HEADER_SECTION}]".encode()


def header_rows(
    replies: list[Any], uids: list[int]
) -> list[tuple[int, list[str], int | None, tuple[Any, ...], int]]:
    """A header FETCH's replies (``imap_fetch.receive_replies``), decoded and parsed: for each of ``uids`` the
    server answered (one expunged meanwhile has no reply), in that order, (uid, flags, modseq, the stored
    values of its header columns, size). The sync's helper process runs this: the sync's own process only
    reads the replies, and stores the rows."""
    fetched = imap_fetch.decode(replies, uids)
    rows = []
    for uid in uids:
        data = fetched.get(uid)
        header = header_of(data) if data else None
        if data is None or header is None:
            continue  # expunged meanwhile
        size = int(data.get(b"RFC822.SIZE") or 0) or len(header)
        rows.append((uid, fetch_flags(data), fetch_modseq(data), header_block_values(header), size))
    return rows


def header_of(data: dict[bytes, Any]) -> bytes | None:
    """The header fields in one FETCH reply (a server may echo the section in its own spelling), or None."""
    if _HEADER_KEY in data:
        return data[_HEADER_KEY] or b""
    for key, value in data.items():
        if key.upper().startswith(b"BODY[HEADER"):
            return value or b""
    return None


def fetch_flags(data: dict[bytes, Any]) -> list[str]:
    """The FLAGS of one FETCH reply, as text."""
    return [f.decode("utf-8", "replace") if isinstance(f, bytes) else str(f) for f in data.get(b"FLAGS", ())]


def fetch_modseq(data: dict[bytes, Any]) -> int | None:
    """The MODSEQ of one FETCH reply (CONDSTORE), or None."""
    value: Any = data.get(b"MODSEQ")
    if isinstance(value, tuple | list) and value:
        value = value[0]
    return int(value) if value is not None else None
