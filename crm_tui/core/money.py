"""Money as crm-tui keeps it: integer minor units (cents), read from text and written for JSON, CSV and people."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation


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
