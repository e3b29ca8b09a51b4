"""The text records are searched by and the terms and LIKE patterns a search is made of."""

from __future__ import annotations

from collections.abc import Iterable


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
