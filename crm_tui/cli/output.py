"""How headless commands print: one JSON array of objects, or an aligned plain-text table; progress on one line.

Every text cell goes through ``terminal_safe``; JSON escapes the characters a terminal would act on.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import Any, TextIO

from crm_tui.core.sanitize import terminal_safe

# JSON escapes C0 controls itself; these (DEL, C1, bidi and zero-width) it would pass through raw.
_JSON_UNSAFE = {
    c: f"\\u{c:04x}"
    for c in [
        0x7F,
        *range(0x80, 0xA0),
        0x200B,
        0x200C,
        0x200D,
        0x200E,
        0x200F,
        0x202A,
        0x202B,
        0x202C,
        0x202D,
        0x202E,
        0x2060,
        0x2066,
        0x2067,
        0x2068,
        0x2069,
        0x061C,
        0xFEFF,
        0x2028,
        0x2029,
    ]
}


def json_value(value: Any, zone: tzinfo) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(zone).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):  # a custom number: a decimal string, as amounts are
        return format(value, "f")
    if isinstance(value, tuple | list):
        return [json_value(v, zone) for v in value]
    if isinstance(value, dict):
        return {k: json_value(v, zone) for k, v in value.items()}
    return value


def print_json(rows: Iterable[dict[str, Any]], zone: tzinfo, out: TextIO | None = None) -> None:
    text = json.dumps([json_value(row, zone) for row in rows], ensure_ascii=False, indent=2)
    (out or sys.stdout).write(text.translate(_JSON_UNSAFE) + "\n")


def print_json_object(value: dict[str, Any], zone: tzinfo, out: TextIO | None = None) -> None:
    """One JSON object (a report), as ``print_json`` prints a list."""
    text = json.dumps(json_value(value, zone), ensure_ascii=False, indent=2)
    (out or sys.stdout).write(text.translate(_JSON_UNSAFE) + "\n")


def cell(value: Any, zone: tzinfo, max_length: int | None = 60) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return ", ".join(cell(v, zone, max_length) for v in value)
    return terminal_safe(str(value), max_length=max_length)


def print_table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], zone: tzinfo, out: TextIO | None = None
) -> None:
    stream = out or sys.stdout
    cells = [[cell(v, zone) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    stream.write("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip() + "\n")
    for row in cells:
        stream.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")
    if not cells:
        stream.write("(none)\n")


def print_fields(fields: Iterable[tuple[str, Any]], zone: tzinfo, out: TextIO | None = None) -> None:
    """One record's fields, one a line: the label, then its whole value (flattened to one line, made safe)."""
    stream = out or sys.stdout
    lines = [
        (
            terminal_safe(label),
            "yes" if value is True else "no" if value is False else cell(value, zone, None),
        )
        for label, value in fields
    ]
    width = max((len(label) for label, _ in lines), default=0)
    for label, value in lines:
        stream.write(f"{label.ljust(width)}  {value}".rstrip() + "\n")


class ProgressLine:
    """A one-line progress display on stderr (a terminal only; pipes and logs get just the summary)."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.shown = False

    def __call__(self, what: str, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        width = 24
        filled = int(width * min(done, total) / total)
        sys.stderr.write(
            f"\r{terminal_safe(what, max_length=30):<30} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}\x1b[K"
        )
        sys.stderr.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
