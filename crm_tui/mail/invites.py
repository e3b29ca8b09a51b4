"""Calendar invitations in mail: the first VEVENT of a text/calendar part (or an .ics attachment), read with
the icalendar library (time zones from the invitation's VTIMEZONE, all-day dates, folded lines). A broken
invitation is no invitation: the mail still shows."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from crm_tui.core.mail_data import Invitation

MAX_ATTENDEES = 200


def _address(value: object) -> tuple[str, str]:
    text = str(value or "")
    address = text[7:] if text.lower().startswith("mailto:") else text
    params = getattr(value, "params", {}) or {}
    name = str(params.get("CN", "") or "")
    if name.lower() == address.lower():
        name = ""
    return name.strip().strip('"'), address.strip().lower()


def _instant(value: object, zone: tzinfo) -> tuple[datetime, bool]:
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=zone)  # floating: the user's time
        return aware.astimezone(UTC), False
    if isinstance(value, date):
        return datetime.combine(value, time(0, 0), tzinfo=zone).astimezone(UTC), True
    raise ValueError("no start")


def calendar_parts(raw: bytes) -> list[bytes]:
    """The iCalendar data in a message: text/calendar parts and attachments named *.ics."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    found = []
    for part in message.walk():
        if part.is_multipart():
            continue
        name = (part.get_filename() or "").lower() if isinstance(part.get_filename(), str) else ""
        if part.get_content_type() in ("text/calendar", "application/ics") or name.endswith(".ics"):
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes) and payload:
                found.append(payload)
    return found


def find_invitation(raw: bytes, zone: tzinfo) -> Invitation | None:
    """The invitation in a mail, or None (also for one that cannot be read). ``zone`` places floating times."""
    import icalendar  # loaded on the first invitation, not at start

    for data in calendar_parts(raw):
        try:
            calendar = icalendar.Calendar.from_ical(data)
            method = str(calendar.get("METHOD", "") or "").upper()
            for event in calendar.walk("VEVENT"):
                start, all_day = _instant(event.decoded("DTSTART"), zone)
                end = None
                if event.get("DTEND") is not None:
                    end = _instant(event.decoded("DTEND"), zone)[0]
                elif event.get("DURATION") is not None:
                    end = start + event.decoded("DURATION")
                elif all_day:
                    end = start + timedelta(days=1)
                attendees = event.get("ATTENDEE") or []
                if not isinstance(attendees, list):
                    attendees = [attendees]
                return Invitation(
                    summary=" ".join(str(event.get("SUMMARY", "") or "").split())[:300],
                    start=start,
                    end=end if end is None or end >= start else None,
                    location=" ".join(str(event.get("LOCATION", "") or "").split())[:300],
                    organizer=_address(event.get("ORGANIZER")),
                    attendees=[_address(a) for a in attendees[:MAX_ATTENDEES]],
                    method=method,
                    uid=str(event.get("UID", "") or "")[:300],
                    all_day=all_day,
                )
        except Exception:  # noqa: BLE001 - real invitations break parsers in many ways; the mail still shows
            continue
    return None


def invitation_ics(
    *,
    uid: str,
    summary: str,
    start: datetime,
    end: datetime | None,
    description: str,
    organizer: tuple[str, str],
    attendees: list[tuple[str, str]],
    now: datetime,
) -> bytes:
    """An iCalendar REQUEST for one meeting (times in UTC), as calendar programs accept from mail."""
    import icalendar  # loaded on the first invitation, not at start

    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//crm-tui//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "REQUEST")
    event = icalendar.Event()
    event.add("uid", uid)
    event.add("dtstamp", now.astimezone(UTC))
    event.add("dtstart", start.astimezone(UTC))
    event.add("dtend", (end or start + timedelta(hours=1)).astimezone(UTC))
    event.add("summary", summary)
    if description:
        event.add("description", description)
    name, address = organizer
    organizer_value = icalendar.vCalAddress(f"mailto:{address}")
    if name:
        organizer_value.params["CN"] = name
    event.add("organizer", organizer_value)
    for name, address in attendees:
        attendee = icalendar.vCalAddress(f"mailto:{address}")
        if name:
            attendee.params["CN"] = name
        attendee.params["ROLE"] = "REQ-PARTICIPANT"
        attendee.params["PARTSTAT"] = "NEEDS-ACTION"
        attendee.params["RSVP"] = "TRUE"
        event.add("attendee", attendee)
    event.add("sequence", 0)
    event.add("status", "CONFIRMED")
    calendar.add_component(event)
    ical: bytes = calendar.to_ical()
    return ical
