"""E-mail addresses and domains: the form crm-tui stores and matches them in, and what survives the
"addresses" mail brings (``MAILER-DAEMON``, a bare word)."""

from __future__ import annotations

import re
from collections.abc import Iterable

_EMAIL_RE = re.compile(
    r"^[^\s@<>()\[\],;:\"\\]{1,64}@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+(?:[^\W\d_]{2,63}|xn--[a-z0-9-]{1,59})$"
)
_DOMAIN_RE = re.compile(r"^(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+(?:[^\W\d_]{2,63}|xn--[a-z0-9-]{1,59})$")


def normalize_email(value: str) -> str:
    """The address in the form crm-tui stores and matches it (trimmed, lower case); ValueError if invalid."""
    address = value.strip().lower()
    if len(address) > 254 or not _EMAIL_RE.match(address):
        raise ValueError(f"{value.strip()!r} is not a valid e-mail address")
    return address


def normalize_domain(value: str) -> str:
    domain = value.strip().lower().lstrip("@")
    if len(domain) > 253 or not _DOMAIN_RE.match(domain):
        raise ValueError(f"{value.strip()!r} is not a valid domain")
    return domain


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


def domain_of(address: str | None) -> str:
    """The domain of an address, lower case; "" for text that is no address (``MAILER-DAEMON``, a bare word,
    ``a@``): mail brings such "addresses", and every use of a domain must survive them."""
    local, at, domain = (address or "").rpartition("@")
    return domain.strip().lower() if at and local else ""
