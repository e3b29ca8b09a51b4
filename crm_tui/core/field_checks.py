"""Checks of a record's input fields: each cleans one value and adds what is wrong to a FieldErrors."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from crm_tui.core.addresses import normalize_email
from crm_tui.core.errors import FieldErrors

_PHONE_RE = re.compile(r"^[0-9+()./\- ]+$")
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


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
