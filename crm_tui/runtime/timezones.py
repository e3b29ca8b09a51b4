"""The system's local time zone, as a real IANA zone where the system says which one it is."""

from __future__ import annotations

import os
from datetime import datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name.strip().lstrip(":"))
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def local_zone() -> tzinfo:
    """$TZ, else /etc/timezone, else the /etc/localtime link; else the current fixed offset."""
    zone = _zone(os.environ.get("TZ"))
    if zone is not None:
        return zone
    try:
        zone = _zone(Path("/etc/timezone").read_text().strip())
    except OSError:
        zone = None
    if zone is not None:
        return zone
    try:
        target = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in target:
            zone = _zone(target.split("zoneinfo/", 1)[1])
    except OSError:
        zone = None
    if zone is not None:
        return zone
    return datetime.now().astimezone().tzinfo or ZoneInfo("UTC")
