"""Text as a form is prefilled with it: untrusted text fitted to a field, a record as a reference field holds it."""

from __future__ import annotations

from typing import Any

from crm_tui.core.sanitize import terminal_safe


def fit_text(value: str | None, max_length: int, *, multiline: bool = False) -> str:
    """Untrusted text (a mail's subject, name or body) as a form is prefilled with it: text ``check_text``
    accepts for a field of ``max_length``. Control characters show as placeholders (``core.sanitize``), line
    ends are ``\n`` (one line: spaces), and what is longer is cut, ending in "…"."""
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
