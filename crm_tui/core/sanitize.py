"""The one function that guards every path from untrusted text (mail, imports) to the terminal.

Decoding (RFC 2047/2231, transfer encodings, charsets) happens first, elsewhere; this runs on the decoded text,
right before display. It makes control, bidi and zero-width characters visible instead of letting the terminal
act on them. It does not escape Rich markup: untrusted text is never rendered as markup (use ``Text``/plain
strings), so brackets are left as the sender wrote them.
"""

from __future__ import annotations

import re

# C0 controls except tab/newline (handled below), DEL, and C1 controls (U+0080-U+009F).
_CONTROL = (
    "".join(chr(c) for c in range(0x00, 0x20) if c not in (0x09, 0x0A))
    + "\x7f"
    + "".join(chr(c) for c in range(0x80, 0xA0))
)
# Bidi embeddings/overrides/isolates/marks and the Arabic letter mark, zero-width and BOM characters.
_BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u180e"

_REPLACEMENTS: dict[int, str] = {}
for _ch in _CONTROL:
    code = ord(_ch)
    if code == 0x1B:
        _REPLACEMENTS[code] = "␛"
    elif code < 0x20:
        # U+2400..U+241F are the "control pictures" for C0: visible and one cell wide.
        _REPLACEMENTS[code] = chr(0x2400 + code)
    elif code == 0x7F:
        _REPLACEMENTS[code] = "␡"
    else:
        _REPLACEMENTS[code] = f"<U+{code:04X}>"
for _ch in _BIDI + _ZERO_WIDTH:
    _REPLACEMENTS[ord(_ch)] = f"<U+{ord(_ch):04X}>"
_LINE_BREAKS = {ord("\n"): " ", ord("\t"): " ", ord("\r"): " ", 0x2028: " ", 0x2029: " ", 0x85: " "}
_SINGLE_LINE = {**_REPLACEMENTS, **_LINE_BREAKS}
_MULTI_LINE = {**_REPLACEMENTS, ord("\r"): None, 0x2028: "\n", 0x2029: "\n", 0x85: "\n"}
_SPACES = re.compile(r" {2,}")


def terminal_safe(text: str | None, *, single_line: bool = True, max_length: int | None = None) -> str:
    """Return ``text`` with nothing a terminal would act on.

    ``single_line`` (subjects, names, filenames) flattens CR/LF/tab to spaces; otherwise (bodies) newlines
    and tabs stay and bare CRs go. ``max_length`` cuts the result (with an ellipsis) for list cells.
    """
    if not text:
        return ""
    if single_line:
        safe = _SPACES.sub(" ", text.translate(_SINGLE_LINE)).strip()
    else:
        safe = text.replace("\r\n", "\n").translate(_MULTI_LINE)
    if max_length is not None and len(safe) > max_length:
        safe = safe[: max(0, max_length - 1)] + "…"
    return safe


# Whole escape sequences (so none of their parameters is left behind as text): CSI (ESC [ or C1 CSI) with its
# parameters and final byte; OSC, DCS, SOS, PM and APC strings up to their terminator; any other ESC sequence.
_ESCAPE_SEQUENCES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
# What goes into a mail written here: controls, bidi controls and invisible characters go (the joiners that
# scripts and emoji need stay).
_UNSAFE = [c for c in _CONTROL + _BIDI + _ZERO_WIDTH if c not in "\u200c\u200d"]
_DROP_SINGLE = {**{ord(c): None for c in _UNSAFE}, **_LINE_BREAKS}
_DROP_MULTI = {**{ord(c): None for c in _UNSAFE}, 0x2028: "\n", 0x2029: "\n", 0x85: "\n"}


def strip_unsafe(text: str | None, *, single_line: bool = True) -> str:
    """``text`` (from a mail, a record, a template) as it may go into a mail written here and its fields:
    escape sequences go whole, other control, bidi and zero-width characters go (not made visible, as
    ``terminal_safe`` does for display). ``single_line`` (a subject, a name, a file name) flattens line breaks
    and tabs to one space; otherwise (a body) newlines and tabs stay and CRs go."""
    if not text:
        return ""
    text = _ESCAPE_SEQUENCES.sub("", text.replace("\r\n", "\n"))
    if single_line:
        return _SPACES.sub(" ", text.translate(_DROP_SINGLE)).strip()
    return text.translate(_DROP_MULTI)
