"""UID FETCH with a fast reader for the replies a sync asks for, and imapclient's own reader for all else.

imapclient turns a FETCH reply into Python objects with a general lexer, token by token: for a header pass
that cost twice the time of the network read itself. The sync asks for few items (UID, FLAGS, RFC822.SIZE,
MODSEQ, BODY[...], BODY[HEADER.FIELDS (...)]); ``read_reply`` reads exactly those with one regular expression
per reply and gives up (returns None) on anything else, and then imapclient's reader reads the same bytes. The result is the one
imapclient's ``fetch`` returns (a test compares both on replies from the test Dovecot).

Reading and decoding are apart (``receive_replies``, ``decode``): the header pass reads the replies on the
sync's connection and decodes them in its helper process. imapclient loads only when its reader is needed.
Sending a command and reading its replies use imaplib's internals: through ``mail.imap_session`` alone.
"""

from __future__ import annotations

import re
from typing import Any

from crm_tui.mail.imap_session import ImapSession

_LITERAL_AT_END = re.compile(rb"\{(\d+)\}\Z")
_REPLY = re.compile(rb"(\d+) \((.*)\)\Z", re.DOTALL)
_ITEM = re.compile(
    rb"(?:(UID|RFC822\.SIZE) (\d+)"
    rb"|FLAGS \(([^()\"{}\x00]*)\)"
    rb"|MODSEQ \((\d+)\)"
    rb"|(BODY\[[A-Z0-9.]*(?: \([A-Z0-9 .\-]*\))?\]) (\x00|NIL))"
    rb"(?: |\Z)"
)


def fetch(
    client: Any, uids: list[int], items: list[str], modifiers: list[str] | None = None
) -> dict[int, Any]:
    """``client.fetch(uids, items, modifiers)`` (UIDs), read faster; the same result."""
    if not uids:
        return {}
    return receive(client, send(client, uids, items, modifiers), uids)


def send(client: Any, uids: list[int], items: list[str], modifiers: list[str] | None = None) -> bytes:
    """Send the UID FETCH only; its tag, for ``receive``. Meanwhile the server prepares the answer (a helper
    sends the next batch's FETCH before it parses the last one)."""
    arguments = ["UID", "FETCH", ",".join(str(uid) for uid in uids), "(" + " ".join(items).upper() + ")"]
    if modifiers:
        arguments.append("(" + " ".join(modifiers).upper() + ")")
    return ImapSession(client).send(*arguments)


def receive(client: Any, tag: bytes, uids: list[int]) -> dict[int, Any]:
    """The answer to the FETCH sent as ``tag`` (``send``), as ``fetch`` gives it."""
    return decode(receive_replies(client, tag), uids, client.normalise_times)


def receive_replies(client: Any, tag: bytes) -> list[Any]:
    """The FETCH replies to ``tag``, read but not decoded (``decode`` does that): plain bytes and tuples of
    them, which another process can take."""
    return ImapSession(client).fetch_replies(tag)


def decode(replies: list[Any], uids: list[int], normalise_times: bool = True) -> dict[int, Any]:
    """FETCH replies (``receive_replies``) as ``fetch`` gives them: for each of ``uids`` that came, its items."""
    decoded = read_reply(replies)
    if decoded is None:
        # Here: imapclient's reader loads only when a reply needs it (a helper process may never).
        from imapclient.response_parser import parse_fetch_response

        decoded = parse_fetch_response(replies, normalise_times, True)
    wanted = set(uids)
    return {uid: reply for uid, reply in decoded.items() if uid in wanted}


def read_reply(data: list[Any]) -> dict[int, dict[bytes, Any]] | None:
    """The FETCH replies in ``data`` (as imaplib collects them: a reply with literals comes as (text, literal)
    pairs and a closing text), keyed by UID, or None when any reply holds something this reader does not."""
    result: dict[int, dict[bytes, Any]] = {}
    index, count = 0, len(data)
    while index < count:
        texts: list[bytes] = []
        literals: list[bytes] = []
        while index < count and isinstance(data[index], tuple):
            head, literal = data[index]
            marker = _LITERAL_AT_END.search(head)
            if marker is None or not isinstance(literal, bytes) or int(marker.group(1)) != len(literal):
                return None
            texts.append(head[: marker.start()] + b"\x00")
            literals.append(literal)
            index += 1
        if index < count and isinstance(data[index], bytes):
            texts.append(data[index])
            index += 1
        elif not literals:
            return None
        text = b"".join(texts)
        if text.count(b"\x00") != len(literals):
            return None
        reply = _REPLY.match(text)
        if reply is None:
            return None
        fields: dict[bytes, Any] = {b"SEQ": int(reply.group(1))}
        body, position, end, next_literal = reply.group(2), 0, len(reply.group(2)), 0
        while position < end:
            item = _ITEM.match(body, position)
            if item is None:
                return None
            name, number, flags, modseq, section, value = item.groups()
            if name is not None:
                fields[name] = int(number)
            elif flags is not None:
                fields[b"FLAGS"] = tuple(flags.split())
            elif modseq is not None:
                fields[b"MODSEQ"] = (int(modseq),)
            elif value == b"NIL":
                fields[section] = None
            else:
                fields[section] = literals[next_literal]
                next_literal += 1
            position = item.end()
        uid = fields.pop(b"UID", None)  # the key, as imapclient gives it
        if uid is None:
            return None  # an unsolicited reply without UID: imapclient's reader decides
        result[uid] = fields
    return result
