"""Outgoing mail: drafts for a new mail, a reply (to the sender or to all), a forward, and the message built
from what the user sees.

Headers are built only from the draft's fields; a CR or LF in any of them (say, a subject copied from an
incoming mail) is flattened to a space, so no text can add a header. Text taken from a mail (its subject,
names, quoted body, attachment names) loses its escape sequences, control and bidi characters on the way in
(``reply``, ``forward``), and the message built keeps none in any header or its body (``build``). The body stays plain text: one
text/plain part (UTF-8), attachments beside it; no HTML is made from it.
"""

from __future__ import annotations

import email.policy
import email.utils
import functools
import mimetypes
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

from crm_tui.core.errors import ValidationError
from crm_tui.core.mail_identity import format_address, subject_key
from crm_tui.core.sanitize import strip_unsafe

QUOTE_LINES = 2000


@dataclass
class Draft:
    from_name: str
    from_address: str
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    subject: str = ""
    body: str = ""
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)  # (name, type, bytes)


def one_line(text: str) -> str:
    """A header's text on one line, without escape sequences, control or bidi characters."""
    return " ".join(strip_unsafe(text).split())


def safe_body(text: str) -> str:
    """A body's text without escape sequences, control or bidi characters (newlines and tabs stay)."""
    return strip_unsafe(text, single_line=False)


def safe_attachments(files: list[tuple[str, str, bytes]]) -> list[tuple[str, str, bytes]]:
    """Attachments taken from a mail: their names and types on one line, without control characters."""
    return [(one_line(name), one_line(kind), data) for name, kind, data in files]


def addresses(text: str) -> list[str]:
    """Typed recipients ("Anna Berg <anna@x.de>, b@y.de") as clean "Name <address>" strings; a wrong one is
    a ValidationError naming it."""
    found = []
    for name, address in email.utils.getaddresses([one_line(text)]):
        address = address.strip()
        if not address:
            continue
        local, at, domain = address.rpartition("@")
        if not at or not local or "." not in domain or any(c in address for c in " <>,;\"'"):
            raise ValidationError.single("to", f"{address!r} is not an e-mail address")
        found.append(format_address(one_line(name), address) if name else address)
    return found


def _lenient(group: list[str]) -> list[str]:
    """Recipients of a draft as far as they are readable (a draft may hold half-typed addresses)."""
    found = []
    for item in group:
        try:
            found.extend(addresses(one_line(item)))
        except ValidationError:
            continue
    return found


def build_draft(draft: Draft, *, now: datetime) -> tuple[bytes, str]:
    """A draft as a message for the Drafts folder: (bytes, Message-ID); recipients may be missing."""
    raw, message_id, _ = build(draft, now=now, lenient=True)
    return raw, message_id


@functools.lru_cache(maxsize=256)
def _parsed(name: str, value: str) -> Any:
    """A header parsed once: From, Date and User-Agent repeat across the mails of a mass mail or a rule (the
    email package parses every header it is given, addresses at some cost; its header objects are immutable)."""
    return SMTP.header_factory(name, value)


def build(draft: Draft, *, now: datetime, lenient: bool = False) -> tuple[bytes, str, list[str]]:
    """The message as it goes out: (bytes, its Message-ID, envelope recipients). Bcc is in the envelope only.
    ``lenient`` (a draft): unreadable or missing recipients are left out instead of refused."""
    # Each recipient read again from one line: a name carrying CR/LF (copied from a mail) stays a name.
    if lenient:
        to, cc, bcc = _lenient(draft.to), _lenient(draft.cc), _lenient(draft.bcc)
    else:
        to, cc, bcc = (
            addresses(", ".join(one_line(a) for a in group)) for group in (draft.to, draft.cc, draft.bcc)
        )
    if not to and not cc and not bcc and not lenient:
        raise ValidationError.single("to", "who is it for? add a recipient")
    message = EmailMessage(policy=SMTP)
    domain = draft.from_address.rpartition("@")[2] or "crm-tui.invalid"
    message_id = email.utils.make_msgid(domain=domain)
    message["From"] = _parsed("From", format_address(one_line(draft.from_name), one_line(draft.from_address)))
    if to:
        message["To"] = ", ".join(one_line(a) for a in to)
    if cc:
        message["Cc"] = ", ".join(one_line(a) for a in cc)
    message["Subject"] = one_line(draft.subject)
    message["Date"] = _parsed("Date", email.utils.format_datetime(now))
    message["Message-ID"] = message_id
    if draft.in_reply_to:
        message["In-Reply-To"] = one_line(draft.in_reply_to)
    if draft.references:
        message["References"] = " ".join(one_line(r) for r in draft.references[-20:])
    message["User-Agent"] = _parsed("User-Agent", "crm-tui")
    body = safe_body(draft.body)
    message.set_content(body if body.endswith("\n") else body + "\n", subtype="plain", charset="utf-8")
    for name, content_type, payload in draft.attachments:
        content_type = one_line(content_type)
        kind, *parameters = [part.strip() for part in (content_type or "application/octet-stream").split(";")]
        maintype, _, subtype = kind.partition("/")
        if not subtype:
            guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
            maintype, _, subtype = guessed.partition("/")
        params = dict(p.split("=", 1) for p in parameters if "=" in p)
        if (maintype, subtype) == ("message", "rfc822"):  # a forwarded mail, whole
            inner = email.message_from_bytes(payload, policy=email.policy.default)
            message.add_attachment(inner, filename=one_line(name) or "message.eml")
            continue
        message.add_attachment(
            payload,
            maintype=maintype,
            subtype=subtype,
            filename=one_line(name) or "attachment",
            params=params,
        )
    envelope = [email.utils.parseaddr(a)[1] for a in [*to, *cc, *bcc]]
    try:
        raw = message.as_bytes()
    except UnicodeEncodeError:
        # The email package cannot fold a subject holding text that looks like an encoded word ("=?...?=",
        # from a mail whose subject was not decodable) beside non-ASCII text: then it goes spaced out.
        subject = one_line(draft.subject)
        del message["Subject"]
        message["Subject"] = subject.replace("=?", "= ?")
        raw = message.as_bytes()
    return raw, message_id, list(dict.fromkeys(envelope))


@dataclass
class Original:
    """What a reply or forward needs of the stored mail (plain values, read in the caller's session)."""

    from_name: str
    from_address: str
    reply_to: list[str]
    to: list[str]
    cc: list[str]
    subject: str
    sent_at: datetime | None
    message_id: str | None
    references: list[str]
    body: str
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)


def with_signature(body: str, signature: str) -> str:
    """The signature ("-- " line, then the text) where the user writes: above a quote, under a new text."""
    if not signature.strip():
        return body
    block = "\n\n-- \n" + signature.strip("\n") + "\n"
    return block + body if body.startswith("\n\n") else body + block


def _prefixed(prefix: str, subject: str) -> str:
    subject = one_line(subject)
    if subject_key(subject) != subject.lower() and subject.lower().startswith(prefix.lower()):
        return subject
    return f"{prefix} {subject}".strip()


def _quoted(original: Original, zone: tzinfo | None) -> str:
    when = original.sent_at.astimezone(zone).strftime("%d.%m.%Y %H:%M") if original.sent_at else ""
    who = one_line(original.from_name) or one_line(original.from_address)
    lines = safe_body(original.body).split("\n")[:QUOTE_LINES]
    return f"\n\n{('On ' + when + ', ') if when else ''}{who} wrote:\n" + "\n".join(
        "> " + line if line else ">" for line in lines
    )


def reply(
    original: Original,
    *,
    from_name: str,
    from_address: str,
    mine: set[str],
    everyone: bool,
    zone: tzinfo | None,
) -> Draft:
    """A reply: to the sender (Reply-To if set), or with ``everyone`` also to the other recipients; quoted;
    threaded by In-Reply-To and References. A reply to a mail I sent goes to its recipients (To), with
    ``everyone`` also to its Cc."""
    # Only recipients a mail can go to (what ``build`` accepts): a bounce's MAILER-DAEMON, an empty From or a
    # group's name ("undisclosed-recipients") is left out, and To is the user's to fill.
    to = _lenient(original.reply_to) or _lenient(
        [format_address(one_line(original.from_name), one_line(original.from_address))]
    )
    others = [*original.to, *original.cc]
    if original.from_address.lower() in {a.lower() for a in mine} and not original.reply_to:
        # A reply to my own mail (a nudge from "No reply to me"): to whom it went, as mutt and aerc do.
        own = {a.lower() for a in mine}
        first = [a for a in _lenient(list(original.to)) if email.utils.parseaddr(a)[1].lower() not in own]
        if first:
            to = first
            others = list(original.cc)
    cc: list[str] = []
    if everyone:
        seen = {email.utils.parseaddr(a)[1].lower() for a in to} | {a.lower() for a in mine}
        for address in _lenient(others):
            plain = email.utils.parseaddr(address)[1].lower()
            if plain and plain not in seen:
                seen.add(plain)
                cc.append(address)
    references = (
        [*original.references, original.message_id] if original.message_id else list(original.references)
    )
    return Draft(
        from_name=from_name,
        from_address=from_address,
        to=to,
        cc=cc,
        subject=_prefixed("Re:", original.subject),
        body=_quoted(original, zone),
        in_reply_to=original.message_id,
        references=[r for r in references if r],
    )


def forward(original: Original, *, from_name: str, from_address: str, zone: tzinfo | None) -> Draft:
    """A forward: the original's headers and text inline, its attachments attached."""
    when = original.sent_at.astimezone(zone).strftime("%d.%m.%Y %H:%M") if original.sent_at else ""
    header = [
        "",
        "",
        "-------- Forwarded message --------",
        f"From: {format_address(one_line(original.from_name), one_line(original.from_address))}",
        f"Date: {when}",
        f"Subject: {one_line(original.subject)}",
    ]
    if original.to:
        header.append(f"To: {', '.join(one_line(a) for a in original.to)}")
    return Draft(
        from_name=from_name,
        from_address=from_address,
        subject=_prefixed("Fwd:", original.subject),
        body="\n".join(header) + "\n\n" + safe_body(original.body),
        attachments=safe_attachments(original.attachments),
    )
