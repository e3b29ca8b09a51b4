"""Time enters the core through a clock object (the ``Clock`` port), never through ``datetime.now()`` inside
logic. The runtime implements it with the system clock (``runtime/clock.py``); ``FixedClock`` pins it."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class FixedClock:
    """A pinned clock (``--now``, tests, demo data); ``advance`` moves it on explicitly."""

    def __init__(self, instant: datetime):
        self._instant = ensure_aware(instant).astimezone(UTC)

    def now(self) -> datetime:
        return self._instant

    def advance(self, **delta: float) -> None:
        self._instant += timedelta(**delta)


def ensure_aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"naive datetime {value.isoformat()} (a time zone is required)")
    return value


class OutOfRange(ValueError):
    """A date-time outside what can be held or reckoned with."""


def parse_instant(text: str, zone: tzinfo) -> datetime:
    """Parse an ISO-8601 date or date-time; one without an offset is read in ``zone``. Returns UTC."""
    text = text.strip()
    if not text:
        raise ValueError("empty date-time")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO-8601 date-time: {text!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+14:00 is before the first instant a datetime holds
        raise OutOfRange(
            f"{text!r} is out of range: it lies before 0001-01-01 or after 9999-12-31 in UTC"
        ) from None


# A pinned clock leaves room for what the app reckons around "now" (local days, weeks, a year ahead).
PINNED_RANGE = (datetime(1000, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC))


def parse_pinned(text: str, zone: tzinfo) -> datetime:
    """``--now``: ``parse_instant``, its date as written (with its own offset, else in ``zone``) within the
    years of PINNED_RANGE: what the message says is what is accepted (1000-01-01T00:00+14:00 is in, though
    it is still 999 in UTC). ValueError (a plain sentence) otherwise."""
    try:
        value: datetime | None = parse_instant(text, zone)
    except OutOfRange:
        value = None
    written = datetime.fromisoformat(text.strip()).year if value is not None else 0
    if value is None or not PINNED_RANGE[0].year <= written < PINNED_RANGE[1].year:
        raise OutOfRange(
            f"{text.strip()!r} is out of range: the clock can be set between the years "
            f"{PINNED_RANGE[0].year} and {PINNED_RANGE[1].year - 1}"
        )
    return value


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not a date (YYYY-MM-DD): {text!r}") from None


def local_day_bounds(day: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """The UTC instants at which local ``day`` starts and the next day starts."""
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)
