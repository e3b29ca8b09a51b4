"""Charset names that real mail uses and Python's codecs do not know.

Mail from Windows and Mac clients names its charset as the WHATWG Encoding Standard lists them
("windows-874", "x-mac-roman", "iso-8859-8-i"): Python raised LookupError, and the subject, the names and the
body showed as encoded words or replacement characters. ``register()`` (idempotent) teaches the codec
registry these labels, so the email package and our decoders read them everywhere.
"""

from __future__ import annotations

import codecs

# label (lower case, "_" for "-") -> Python codec; each a label of the WHATWG Encoding Standard.
ALIASES = {
    "windows_874": "cp874",
    "x_mac_roman": "mac_roman",
    "x_mac_cyrillic": "mac_cyrillic",
    "x_mac_ukrainian": "mac_cyrillic",
    "macintosh": "mac_roman",
    "iso_8859_8_i": "iso8859_8",
    "logical": "iso8859_8",
    "visual": "iso8859_8",
    "x_sjis": "shift_jis",
    "ms_kanji": "shift_jis",
    "x_gbk": "gbk",
    "x_euc_jp": "euc_jp",
    "x_x_big5": "big5",
    "cn_big5": "big5",
    "ks_c_5601_1989": "euc_kr",
    "windows_949": "cp949",
    "csiso2022kr": "iso2022_kr",
    "x_cp1250": "cp1250",
    "x_cp1251": "cp1251",
    "x_cp1252": "cp1252",
    "dos_874": "cp874",
}

_registered = False


def _search(name: str) -> codecs.CodecInfo | None:
    target = ALIASES.get(name.strip().lower().replace("-", "_").replace(" ", "_"))
    return codecs.lookup(target) if target else None


def register() -> None:
    """Add the aliases to Python's codec registry (once per process)."""
    global _registered
    if not _registered:
        _registered = True
        codecs.register(_search)
