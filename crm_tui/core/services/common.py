"""Small helpers the services share: field checks, normalisation, search patterns, money."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, TypeVar

from sqlalchemy import select
from sqlmodel import Session, SQLModel

from crm_tui.core.errors import FieldErrors, NotFound

M = TypeVar("M", bound=SQLModel)

_EMAIL_RE = re.compile(
    r"^[^\s@<>()\[\],;:\"\\]{1,64}@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+(?:[^\W\d_]{2,63}|xn--[a-z0-9-]{1,59})$"
)
_DOMAIN_RE = re.compile(r"^(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+(?:[^\W\d_]{2,63}|xn--[a-z0-9-]{1,59})$")
_PHONE_RE = re.compile(r"^[0-9+()./\- ]+$")
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")

D = TypeVar("D")


def owned_by_default(data: D, me_id: int | None) -> D:
    """The input with the current user as owner when it names none: I own what I create."""
    if me_id is not None and getattr(data, "owner_id", None) is None:
        return dataclasses.replace(data, owner_id=me_id)  # type: ignore[type-var]
    return data


def child_values(session: Session, value: Any, parent: Any, parent_id: int, order: Any) -> list[Any]:
    """One column of a record's child rows, in order: a contact's addresses, an organization's domains."""
    return list(session.scalars(select(value).where(parent == parent_id).order_by(order)))


def get_or_404(session: Session, model: type[M], record_id: int | None, what: str | None = None) -> M:
    """The row with that id, or NotFound naming it (``contact:42 does not exist``)."""
    row = session.get(model, record_id) if record_id is not None else None
    if row is None:
        raise NotFound(f"{what or model.__tablename__}:{record_id} does not exist")
    return row


def check_exists(
    session: Session, errors: FieldErrors, field: str, model: type[SQLModel], record_id: int | None
) -> Any | None:
    """Look up an optional reference; a dangling one becomes a field error. Returns the row or None."""
    if record_id is None:
        return None
    row = session.get(model, record_id)
    if row is None:
        errors.add(field, f"{model.__tablename__}:{record_id} does not exist")
    return row


def clean(value: str | None) -> str | None:
    """Strip a free-text field; empty becomes None."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def check_text(
    errors: FieldErrors, field: str, value: str | None, *, required: bool = False, max_length: int = 500
) -> str | None:
    value = clean(value)
    if value is None:
        if required:
            errors.add(field, "is required")
        return None
    if len(value) > max_length:
        errors.add(field, f"is longer than {max_length} characters")
    elif _CONTROL_RE.search(value.replace("\n", "").replace("\t", "")):
        errors.add(field, "contains control characters")
    return value


def fit_text(value: str | None, max_length: int, *, multiline: bool = False) -> str:
    """Untrusted text (a mail's subject, name or body) as a form is prefilled with it: text ``check_text``
    accepts for a field of ``max_length``. Control characters show as placeholders (``core.sanitize``), line
    ends are ``\n`` (one line: spaces), and what is longer is cut, ending in "…"."""
    from crm_tui.core.sanitize import terminal_safe

    text = terminal_safe(value, single_line=not multiline).strip()
    if len(text) > max_length:
        text = text[: max_length - 1].rstrip() + "…"
    return text


def ref_text(label: str | None, record_type: Any, record_id: int | None) -> str:
    """A record as a form's reference field holds it: ``Name [type:id]`` ("" without a record)."""
    if record_id is None:
        return ""
    kind = getattr(record_type, "value", record_type)
    return f"{fit_text(label, 200)} [{kind}:{record_id}]".strip()


def valid_emails(values: Iterable[str]) -> list[str]:
    """The addresses among ``values`` that ``check_emails`` accepts, normalised, each once (a form made from a
    mail offers only these: a bounce's "MAILER-DAEMON" is no address to keep)."""
    found: list[str] = []
    for value in values:
        try:
            address = normalize_email(value or "")
        except ValueError:
            continue
        if address not in found:
            found.append(address)
    return found


def valid_domain(value: str | None) -> str:
    """``value`` as ``normalize_domain`` stores it, or "" where it is no domain."""
    try:
        return normalize_domain(value or "")
    except ValueError:
        return ""


def normalize_email(value: str) -> str:
    """The address in the form crm-tui stores and matches it (trimmed, lower case); ValueError if invalid."""
    address = value.strip().lower()
    if len(address) > 254 or not _EMAIL_RE.match(address):
        raise ValueError(f"{value.strip()!r} is not a valid e-mail address")
    return address


def check_emails(errors: FieldErrors, field: str, values: Iterable[str]) -> list[str]:
    """Validate and normalise a list of addresses (blank entries skipped, duplicates refused)."""
    result: list[str] = []
    for value in values:
        if not value or not value.strip():
            continue
        try:
            address = normalize_email(value)
        except ValueError as exc:
            errors.add(field, str(exc))
            continue
        if address in result:
            errors.add(field, f"{address} is listed twice")
            continue
        result.append(address)
    return result


def domain_of(address: str | None) -> str:
    """The domain of an address, lower case; "" for text that is no address (``MAILER-DAEMON``, a bare word,
    ``a@``): mail brings such "addresses", and every use of a domain must survive them."""
    local, at, domain = (address or "").rpartition("@")
    return domain.strip().lower() if at and local else ""


def normalize_domain(value: str) -> str:
    domain = value.strip().lower().lstrip("@")
    if len(domain) > 253 or not _DOMAIN_RE.match(domain):
        raise ValueError(f"{value.strip()!r} is not a valid domain")
    return domain


def check_phones(errors: FieldErrors, field: str, values: Iterable[str]) -> list[str]:
    result: list[str] = []
    for value in values:
        number = (value or "").strip()
        if not number:
            continue
        if not _PHONE_RE.match(number) or sum(ch.isdigit() for ch in number) < 3 or len(number) > 40:
            errors.add(field, f"{number!r} is not a phone number (digits, spaces and + ( ) . / -)")
            continue
        result.append(number)
    return result


def check_currency(errors: FieldErrors, field: str, value: str | None) -> str:
    code = (value or "").strip().upper()
    if not _CURRENCY_RE.match(code):
        errors.add(field, f"{value!r} is not a three-letter currency code (EUR, USD, ...)")
    return code


def check_choice(errors: FieldErrors, field: str, value: str | None, allowed: Iterable[str]) -> str | None:
    options = [str(option) for option in allowed]
    if value is None or str(value) not in options:
        errors.add(field, f"must be one of {', '.join(options)} (got {value!r})")
        return None
    return str(value)


def check_aware(errors: FieldErrors, field: str, value: datetime | None, *, required: bool = False) -> None:
    if value is None:
        if required:
            errors.add(field, "is required")
        return
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        errors.add(field, "needs a time zone")


def digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def search_blob(*parts: str | None, phones: Iterable[str] = ()) -> str:
    """The lower-case text a record is searched by; phone numbers also as bare digits."""
    words = [part for part in parts if part]
    for phone in phones:
        words.append(phone)
        words.append(digits(phone))
    return " ".join(words).lower()


MAX_SEARCH_TERMS = 8  # a record's search uses the first words; ``left_out_terms`` says how many it left out


def search_terms(text: str | None) -> list[str]:
    return (text or "").lower().split()[:MAX_SEARCH_TERMS]


def left_out_terms(text: str | None) -> int:
    return max(0, len((text or "").split()) - MAX_SEARCH_TERMS)


def like_pattern(term: str) -> str:
    """A LIKE pattern (ESCAPE '\\') that finds ``term`` anywhere, with its own % and _ taken literally."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def parse_amount(text: str | int | Decimal) -> int:
    """Minor units (cents) from '1234.50', '1234,50', '1,234.50' or a Decimal; ValueError if not money."""
    if isinstance(text, int):
        return text * 100
    if isinstance(text, Decimal):
        value = text
    else:
        raw = text.strip().replace(" ", "").replace("\u00a0", "")
        if "," in raw and "." in raw:
            raw = (
                raw.replace(",", "")
                if raw.rfind(".") > raw.rfind(",")
                else raw.replace(".", "").replace(",", ".")
            )
        elif "," in raw:
            raw = raw.replace(",", ".")
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise ValueError(f"{text!r} is not an amount") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is not an amount")
    cents = (value * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(cents)


def format_amount(cents: int) -> str:
    """'12345.60' from 1234560: the plain decimal form used in JSON and CSV."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def format_money(cents: int, currency: str) -> str:
    """'12,345.60 EUR' for people."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100:,}.{cents % 100:02d} {currency}"
