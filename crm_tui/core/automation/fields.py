"""The fields of a record that rules can test, watch and count from, by entity, as plain values."""

from __future__ import annotations

import calendar
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.errors import CrmError

ENTITIES = ("opportunity", "lead", "ticket")
MODELS: dict[str, type[Any]] = {"opportunity": m.Opportunity, "lead": m.Lead, "ticket": m.Ticket}

# Field name -> what it is, per entity. "amount" is in the currency's major unit (12500 means 12,500.00).
FIELDS: dict[str, dict[str, str]] = {
    "opportunity": {
        "title": "text", "amount": "number", "currency": "text", "expected_close": "date", "owner": "user",
        "organization": "organization", "installer": "organization", "reseller": "organization",
        "region": "text", "postcode": "text", "pipeline": "text", "stage": "text", "created": "date",
    },
    "lead": {
        "title": "text", "status": "text", "source": "text", "company_name": "text", "owner": "user",
        "created": "date",
    },
    "ticket": {"subject": "text", "status": "text", "owner": "user", "organization": "organization", "created": "date"},
}  # fmt: skip
DATE_FIELDS = {entity: [n for n, k in fields.items() if k == "date"] for entity, fields in FIELDS.items()}
# A watched field may be any of the record's own columns below (what "field changed" events carry).
COLUMN_OF = {"owner": "owner_id", "organization": "organization_id", "installer": "installer_id",
             "reseller": "reseller_id", "amount": "amount_cents", "created": "created_at"}  # fmt: skip
OPERATORS = ("=", "!=", ">=", "<=", ">", "<", "~")
UNITS = ("minutes", "hours", "days", "months")


def zone_of(name: str) -> Any:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def record_values(session: Session, entity: str, record: Any, custom: bool = True) -> dict[str, Any]:
    """The fields of ``record`` by the names rules use (and ``custom.KEY`` for custom fields)."""
    values: dict[str, Any] = {}
    for name in FIELDS[entity]:
        column = COLUMN_OF.get(name, name)
        if name in ("region", "postcode"):
            org = session.get(m.Organization, record.organization_id) if record.organization_id else None
            values[name] = getattr(org, name, None) if org else None
        elif name == "pipeline":
            pipeline = session.get(m.Pipeline, record.pipeline_id)
            values[name] = pipeline.name if pipeline else None
        elif name == "stage":
            stage = session.get(m.Stage, record.stage_id)
            values[name] = stage.name if stage else None
        elif name == "amount":
            values[name] = Decimal(record.amount_cents) / 100
        elif name == "created":
            values[name] = record.created_at.date()
        else:
            values[name] = getattr(record, column, None)
    if custom:
        rows = session.execute(
            select(col(m.CustomFieldDefinition.key), col(m.CustomFieldValue.value))
            .join(m.CustomFieldValue, col(m.CustomFieldValue.definition_id) == m.CustomFieldDefinition.id)
            .where(
                col(m.CustomFieldDefinition.entity_type) == entity,
                col(m.CustomFieldValue.record_id) == record.id,
            )
        )
        for key, value in rows:
            values[f"custom.{key}"] = value
    return values


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: str

    def text(self) -> str:
        return f"{self.field} {self.op} {self.value}"


def parse_conditions(text: str) -> list[Condition]:
    """One condition a line: ``FIELD OP VALUE`` (OP one of = != > >= < <= ~ (contains)). Raises ValueError
    naming the line."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        for op in sorted(OPERATORS, key=len, reverse=True):
            left, sep, right = line.partition(f" {op} ")
            if sep:
                found.append(Condition(left.strip(), op, right.strip().strip('"')))
                break
        else:
            raise ValueError(f"line {number}: write FIELD OP VALUE, e.g. 'amount >= 10000' (got {line!r})")
    return found


def conditions_json(conditions: list[Condition]) -> str:
    return json.dumps([{"field": c.field, "op": c.op, "value": c.value} for c in conditions])


def load_conditions(text: str) -> list[Condition]:
    return [Condition(c["field"], c["op"], str(c["value"])) for c in json.loads(text or "[]")]


def check_condition_fields(entity: str, conditions: list[Condition], custom_keys: set[str]) -> str | None:
    for condition in conditions:
        if condition.field.startswith("custom."):
            if condition.field[7:] not in custom_keys:
                return f"no custom field {condition.field[7:]!r} on {entity}s"
        elif condition.field not in FIELDS[entity]:
            return f"{condition.field!r} is not a field of {entity}s (known: {', '.join(FIELDS[entity])})"
    return None


def _comparable(left: Any, right: str) -> tuple[Any, Any]:
    if isinstance(left, bool):
        return str(left).lower(), right.lower()
    if isinstance(left, (int, Decimal, float)) and not isinstance(left, bool):
        try:
            return Decimal(str(left)), Decimal(right.replace(",", ""))
        except InvalidOperation:
            return str(left), right
    if isinstance(left, date):
        try:
            return left, date.fromisoformat(right)
        except ValueError:
            return left.isoformat(), right
    if isinstance(left, str):
        try:
            return Decimal(left), Decimal(right)
        except InvalidOperation:
            return left.casefold(), right.casefold()
    return ("" if left is None else str(left)).casefold(), right.casefold()


def holds(conditions: list[Condition], values: dict[str, Any]) -> bool:
    for condition in conditions:
        left = values.get(condition.field)
        if condition.op == "~":
            if condition.value.casefold() not in ("" if left is None else str(left)).casefold():
                return False
            continue
        if left is None:
            if condition.op == "=" and condition.value in ("", "none"):
                continue
            if condition.op == "!=" and condition.value not in ("", "none"):
                continue
            return False
        a, b = _comparable(left, condition.value)
        try:
            ok = {
                "=": a == b, "!=": a != b, ">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b,
            }[condition.op]  # fmt: skip
        except TypeError:
            ok = False
        if not ok:
            return False
    return True


def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def parse_at_time(text: str | None) -> time | None:
    if not text:
        return None
    try:
        hours, minutes = text.strip().split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise CrmError(f"not a time of day (HH:MM): {text!r}") from None


def shifted(moment: datetime, value: int, unit: str, *, at_time: str | None, zone: Any) -> datetime:
    """``moment`` plus ``value`` ``unit`` (calendar days and months in the rule's zone), at ``at_time`` local
    if set (days and months only). Returns UTC."""
    if value == 0:
        return moment.astimezone(UTC)
    if unit == "minutes":
        return (moment + timedelta(minutes=value)).astimezone(UTC)
    if unit == "hours":
        return (moment + timedelta(hours=value)).astimezone(UTC)
    local = moment.astimezone(zone)
    day = local.date() + timedelta(days=value) if unit == "days" else add_months(local.date(), value)
    clock = parse_at_time(at_time) or local.time().replace(tzinfo=None)
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def from_date(day: date, value: int, unit: str, *, at_time: str | None, zone: Any) -> datetime:
    """A date field's day at ``at_time`` (09:00 if unset) local, shifted (negative: before)."""
    start = datetime.combine(day, parse_at_time(at_time) or time(9, 0), tzinfo=zone)
    return shifted(start, value, unit, at_time=None, zone=zone)
