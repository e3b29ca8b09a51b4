"""Counts in words: "1 message", "2 messages", "1 activity", "3 activities" (never "1 messages" or "message(s)");
sizes in words: "812 B", "1.5 KB"."""

from __future__ import annotations


def plural_of(noun: str) -> str:
    """The English plural of a noun as crm-tui uses them ("activity" -> "activities", "box" -> "boxes"); the
    last word of a phrase ("custom field" -> "custom fields")."""
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u", ""):
        return noun[:-1] + "ies"
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    return noun + "s"


def plural(count: int, noun: str, plural_form: str | None = None, *, shown: str | None = None) -> str:
    """``count`` and the noun that goes with it: plural(1, "message") is "1 message", plural(0, "user") "0 users".
    ``plural_form`` for an irregular one; ``shown``: how the count is written ("1000+" for a capped count)."""
    word = noun if count == 1 else (plural_form or plural_of(noun))
    return f"{shown if shown is not None else count} {word}"


def size_text(text: str) -> str:
    """A size in bytes (as a mail's attachment list writes it: "1536") in words: "1.5 KB"; "?" when unreadable."""
    try:
        size = float(int(text))
    except ValueError:
        return "?"
    for unit in ("B", "KB"):
        if size < 1024:
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} MB"
