"""Mail that comes back: a delivery status notification (``multipart/report; report-type=delivery-status``,
RFC 3464) or any returned message (a bounce that quotes the mail it returns, as a ``message/rfc822`` or
``text/rfc822-headers`` part). What the store needs of it: the Message-IDs of the returned mail and, from a
report, each recipient whose delivery failed with the server's diagnostic. Never raises for the content."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import Message

from crm_tui.mail.header_decoding import message_ids_in

_RETURNED_TYPES = ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers", "message/global",
                   "message/global-headers")  # fmt: skip
_ADDRESS = re.compile(r"[^\s<>;:,\"]+@[^\s<>;:,\"]+")
MAX_PARTS = 200  # a report with more parts than this is read no further


def returned(raw: bytes) -> tuple[list[str], list[tuple[str, str]]]:
    """(the Message-IDs of the mail this one returns, [(address, diagnostic)] of the recipients a delivery
    report says failed). Both empty for any other mail, for one no parser makes sense of, and for a report that
    names its recipients and none failed (delayed, relayed, delivered: the mail is still on its way)."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception:  # noqa: BLE001 - a mail no parser takes returns nothing
        return [], []
    ids: list[str] = []
    failed: list[tuple[str, str]] = []
    reported = False  # a report with per-recipient Actions
    failing = False  # one of them "failed" (its recipient may still be unreadable: then the text tells)
    for count, part in enumerate(message.walk()):
        if count > MAX_PARTS:
            break
        kind = part.get_content_type()
        if kind in _RETURNED_TYPES:
            for found in _returned_ids(part):
                if found not in ids:
                    ids.append(found)
        elif kind in ("message/delivery-status", "message/global-delivery-status"):
            failed.extend(_failed_recipients(part))
            actions = {str(block.get("Action") or "").strip().lower() for block in _blocks(part)} - {""}
            reported = reported or bool(actions)
            failing = failing or "failed" in actions
    if reported and not failing:
        return [], []
    if failed and not ids:  # a report without the returned mail may name it in its per-message fields
        for part in message.walk():
            if part.get_content_type() == "message/delivery-status":
                for block in _blocks(part)[:1]:
                    ids.extend(message_ids_in(str(block.get("X-Original-Message-ID") or "")))
    return ids[:20], failed[:500]


def _returned_ids(part: Message) -> list[str]:
    payload = part.get_payload()
    if isinstance(payload, list):  # message/rfc822: the returned message itself
        inner = payload[0] if payload and isinstance(payload[0], Message) else None
        value = inner.get("Message-ID") if inner is not None else None
        return message_ids_in(str(value)) if value is not None else []
    text = part.get_payload(decode=True)
    headers = (
        email.message_from_bytes(text, policy=email.policy.compat32)
        if isinstance(text, bytes)
        else email.message_from_string(str(payload or ""), policy=email.policy.compat32)
    )
    value = headers.get("Message-ID")
    return message_ids_in(str(value)) if value is not None else []


def _blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    return []


def _failed_recipients(part: Message) -> list[tuple[str, str]]:
    """The per-recipient fields whose Action is failed (or, without an Action, whose Status is 5.x.x)."""
    found: list[tuple[str, str]] = []
    for block in _blocks(part):
        action = str(block.get("Action") or "").strip().lower()
        status = str(block.get("Status") or "").strip()
        if action != "failed" and not (not action and status.startswith("5")):
            continue
        address = _address(block.get("Final-Recipient")) or _address(block.get("Original-Recipient"))
        if address is None:
            continue
        diagnostic = " ".join(str(block.get("Diagnostic-Code") or "").split())
        if ";" in diagnostic.split(" ", 1)[0] or diagnostic.lower().startswith(("smtp;", "x-")):
            diagnostic = diagnostic.split(";", 1)[-1].strip()  # "smtp; 550 ..." as "550 ..."
        reason = diagnostic or (f"status {status}" if status else "delivery failed")
        found.append((address, reason[:400]))
    return found


def _address(value: object) -> str | None:
    """The address of a recipient field ("rfc822; a@b", "RFC822; <a@b>", "<a@b>")."""
    if value is None:
        return None
    text = str(value)
    match = _ADDRESS.search(text.split(";", 1)[-1] if ";" in text else text)
    return match.group(0).strip(".").lower() if match else None
