"""Form text <-> typed values, shared by every record kind's form: the Converter that turns what was typed into
a service's input (collecting a message per bad field), and the text a form shows for dates, owners and custom
fields."""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Any

from crm_tui.core.clock import parse_date
from crm_tui.core.errors import FieldErrors
from crm_tui.core.money import parse_amount
from crm_tui.core.services import custom_fields, users
from crm_tui.core.services.references import resolve_reference
from crm_tui.runtime.context import AppContext
from crm_tui.ui.screens.record_form import FieldSpec


class Converter:
    """Turns form text into typed values, collecting a message per bad field. ``session`` is the save's
    (references are resolved in the same transaction)."""

    def __init__(self, session: Any, context: AppContext):
        self.session, self.context = session, context
        self.errors = FieldErrors()

    def text(self, values: dict[str, str], name: str) -> str | None:
        return values.get(name, "").strip() or None

    def items(self, values: dict[str, str], name: str) -> list[str]:
        return [part.strip() for part in re.split(r"[,;\n]", values.get(name, "")) if part.strip()]

    def date(self, values: dict[str, str], name: str) -> Any:
        raw = values.get(name, "").strip()
        if not raw:
            return None
        try:
            return parse_date(raw)
        except ValueError as exc:
            self.errors.add(name, str(exc))
            return None

    def instant(self, values: dict[str, str], name: str) -> datetime | None:
        raw = values.get(name, "").strip()
        if not raw:
            return None
        try:
            return datetime.strptime(raw, "%Y-%m-%d %H:%M").replace(tzinfo=self.context.zone)
        except ValueError:
            try:
                return datetime.combine(parse_date(raw), time(9, 0), tzinfo=self.context.zone)
            except ValueError:
                self.errors.add(name, f"{raw!r} is not a date and time (YYYY-MM-DD HH:MM)")
                return None

    def money(self, values: dict[str, str], name: str) -> int:
        raw = values.get(name, "").strip()
        if not raw:
            return 0
        try:
            return parse_amount(raw)
        except ValueError as exc:
            self.errors.add(name, str(exc))
            return 0

    def ref(self, values: dict[str, str], name: str, ref_type: str) -> int | None:
        raw = values.get(name, "").strip()
        if not raw:
            return None
        try:
            return resolve_reference(self.session, ref_type, raw)
        except ValueError as exc:
            self.errors.add(name, str(exc))
            return None

    def owner(self, values: dict[str, str], name: str = "owner_id") -> int | None:
        return int(values[name]) if values.get(name) else None

    def custom(self, values: dict[str, str]) -> dict[str, str]:
        return {
            name.removeprefix("custom."): value
            for name, value in values.items()
            if name.startswith("custom.")
        }

    def raise_if_any(self) -> None:
        self.errors.raise_if_any()


def custom_field_specs(session: Any, entity_type: str) -> list[FieldSpec]:
    """The fields of the kind's custom fields (``custom.KEY``), in their order."""
    specs = []
    for definition in custom_fields.field_definitions(session, entity_type):
        kind, choices = "text", []
        if definition.field_type == "choice":
            kind, choices = "choice", [(c, c) for c in definition.choices]
        elif definition.field_type == "boolean":
            kind, choices = "choice", [("true", "yes"), ("false", "no")]
        elif definition.field_type == "date":
            kind = "date"
        elif definition.field_type == "number":
            kind = "number"
        specs.append(
            FieldSpec(
                f"custom.{definition.key}", definition.label, kind, choices, required=definition.required
            )
        )
    return specs


def custom_values_text(custom: tuple[tuple[str, Any], ...]) -> dict[str, str]:
    """A record's custom values as its form's fields hold them."""
    result = {}
    for key, value in custom:
        if isinstance(value, bool):
            value = "true" if value else "false"
        result[f"custom.{key}"] = str(value)
    return result


def user_choices(session: Any) -> list[tuple[str, str]]:
    """The choices of an owner field."""
    return [(str(user_id), name) for user_id, name in users.user_choices(session)]


def owner_text(owner_id: int | None) -> str:
    return str(owner_id or "")


def flag_text(value: bool) -> str:
    return "true" if value else "false"


def local_text(value: datetime | None, context: AppContext) -> str:
    """An instant as a datetime field shows it, in the user's zone."""
    return value.astimezone(context.zone).strftime("%Y-%m-%d %H:%M") if value else ""
