"""Custom field definitions per entity type, and their values on records."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import delete, func, select
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.errors import FieldErrors, ValidationError
from crm_tui.core.field_checks import check_choice, check_text
from crm_tui.core.services.records import ATTACHABLE
from crm_tui.core.services.rows import get_or_404, id_of
from crm_tui.core.types import RecordRef

ENTITY_TYPES = sorted(t.value for t in ATTACHABLE)
_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_TRUE = {"true", "yes", "1", "y", "on"}
_FALSE = {"false", "no", "0", "n", "off"}


@dataclass
class FieldDefinitionInput:
    entity_type: str
    key: str
    label: str
    field_type: str = m.CustomFieldType.TEXT.value
    choices: list[str] | None = None
    required: bool = False
    position: int = 0


def _check_definition(session: Session, data: FieldDefinitionInput, current_id: int | None) -> FieldErrors:
    errors = FieldErrors()
    check_choice(errors, "entity_type", data.entity_type, ENTITY_TYPES)
    if not _KEY_RE.match(data.key or ""):
        errors.add("key", "must start with a letter and use only a-z, 0-9 and _ (at most 40)")
    check_text(errors, "label", data.label, required=True, max_length=80)
    check_choice(errors, "field_type", data.field_type, [t.value for t in m.CustomFieldType])
    if data.field_type == m.CustomFieldType.CHOICE.value:
        options = [option.strip() for option in data.choices or [] if option.strip()]
        if not options:
            errors.add("choices", "a choice field needs at least one choice")
        elif len(set(options)) != len(options):
            errors.add("choices", "choices must differ")
    existing = session.scalars(
        select(m.CustomFieldDefinition).where(
            col(m.CustomFieldDefinition.entity_type) == data.entity_type,
            col(m.CustomFieldDefinition.key) == data.key,
        )
    ).first()
    if existing is not None and existing.id != current_id:
        errors.add("key", f"{data.entity_type} already has a field {data.key!r}")
    return errors


def define_field(session: Session, data: FieldDefinitionInput) -> m.CustomFieldDefinition:
    _forget_definitions(session)
    _check_definition(session, data, None).raise_if_any()
    definition = m.CustomFieldDefinition(
        entity_type=data.entity_type,
        key=data.key,
        label=data.label.strip(),
        field_type=data.field_type,
        choices="\n".join(o.strip() for o in data.choices or [] if o.strip()) or None,
        required=data.required,
        position=data.position,
    )
    session.add(definition)
    session.flush()
    return definition


def update_field(session: Session, definition_id: int, data: FieldDefinitionInput) -> m.CustomFieldDefinition:
    _forget_definitions(session)
    definition = get_or_404(session, m.CustomFieldDefinition, definition_id, "custom field")
    errors = _check_definition(session, data, definition_id)
    if data.entity_type != definition.entity_type:
        errors.add("entity_type", "cannot change the record type of an existing field")
    if data.field_type != definition.field_type:
        used = session.scalar(
            select(func.count())
            .select_from(m.CustomFieldValue)
            .where(col(m.CustomFieldValue.definition_id) == definition_id)
        )
        if used:
            errors.add("field_type", f"{used} records have a value; the type cannot change")
    errors.raise_if_any()
    definition.key = data.key
    definition.label = data.label.strip()
    definition.field_type = data.field_type
    definition.choices = "\n".join(o.strip() for o in data.choices or [] if o.strip()) or None
    definition.required = data.required
    definition.position = data.position
    session.add(definition)
    session.flush()
    return definition


def delete_field(session: Session, definition_id: int) -> None:
    _forget_definitions(session)
    definition = get_or_404(session, m.CustomFieldDefinition, definition_id, "custom field")
    session.delete(definition)
    session.flush()


_CACHE = "custom_field_definitions"


def definitions_for(session: Session, entity_type: str) -> list[m.CustomFieldDefinition]:
    """The type's custom fields, read once per session (every record saved asks; they change rarely, and
    every change here forgets them)."""
    cache = session.info.setdefault(_CACHE, {})
    if entity_type not in cache:
        cache[entity_type] = list(
            session.scalars(
                select(m.CustomFieldDefinition)
                .where(col(m.CustomFieldDefinition.entity_type) == entity_type)
                .order_by(col(m.CustomFieldDefinition.position), col(m.CustomFieldDefinition.id))
            )
        )
    return list(cache[entity_type])


def _forget_definitions(session: Session) -> None:
    session.info.pop(_CACHE, None)


def _convert(definition: m.CustomFieldDefinition, raw: Any) -> str:
    """The canonical stored text of a value, or ValueError with what is wrong."""
    kind = definition.field_type
    if kind == m.CustomFieldType.NUMBER.value:
        try:
            number = Decimal(str(raw).strip().replace(",", "."))
        except InvalidOperation:
            raise ValueError(f"{raw!r} is not a number") from None
        if not number.is_finite():
            raise ValueError(f"{raw!r} is not a number")
        return format(number.normalize(), "f")
    if kind == m.CustomFieldType.DATE.value:
        if isinstance(raw, date):
            return raw.isoformat()
        try:
            return date.fromisoformat(str(raw).strip()).isoformat()
        except ValueError:
            raise ValueError(f"{raw!r} is not a date (YYYY-MM-DD)") from None
    if kind == m.CustomFieldType.BOOLEAN.value:
        if isinstance(raw, bool):
            return "true" if raw else "false"
        word = str(raw).strip().lower()
        if word in _TRUE:
            return "true"
        if word in _FALSE:
            return "false"
        raise ValueError(f"{raw!r} is not yes or no")
    if kind == m.CustomFieldType.CHOICE.value:
        options = (definition.choices or "").split("\n")
        if str(raw).strip() not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return str(raw).strip()
    text = str(raw).strip()
    if len(text) > 2000:
        raise ValueError("is longer than 2000 characters")
    return text


def _typed(definition: m.CustomFieldDefinition, stored: str) -> Any:
    kind = definition.field_type
    if kind == m.CustomFieldType.NUMBER.value:
        return Decimal(stored)
    if kind == m.CustomFieldType.DATE.value:
        return date.fromisoformat(stored)
    if kind == m.CustomFieldType.BOOLEAN.value:
        return stored == "true"
    return stored


def check_values(
    session: Session,
    entity_type: str,
    values: Mapping[str, Any] | None,
    *,
    errors: FieldErrors,
    partial: bool = False,
) -> dict[int, str | None]:
    """Validate custom values for a record of ``entity_type``; errors are keyed ``custom.KEY``.

    Returns definition id -> canonical text (None clears). Unless ``partial``, required fields must be given.
    """
    values = dict(values or {})
    result: dict[int, str | None] = {}
    definitions = {d.key: d for d in definitions_for(session, entity_type)}
    for key in values:
        if key not in definitions:
            errors.add(f"custom.{key}", f"{entity_type} has no custom field {key!r}")
    for key, definition in definitions.items():
        raw = values.get(key)
        empty = raw is None or (isinstance(raw, str) and not raw.strip())
        if empty:
            if definition.required and (not partial or key in values):
                errors.add(f"custom.{key}", f"{definition.label} is required")
            elif key in values:
                result[id_of(definition)] = None
            continue
        try:
            result[id_of(definition)] = _convert(definition, raw)
        except ValueError as exc:
            errors.add(f"custom.{key}", f"{definition.label}: {exc}")
    return result


def store_values(session: Session, record_id: int, converted: Mapping[int, str | None]) -> None:
    """Write values checked by ``check_values`` (inside the caller's transaction)."""
    if not converted:
        return
    for definition_id, value in converted.items():
        existing = session.scalars(
            select(m.CustomFieldValue).where(
                col(m.CustomFieldValue.definition_id) == definition_id,
                col(m.CustomFieldValue.record_id) == record_id,
            )
        ).first()
        if value is None:
            if existing is not None:
                session.delete(existing)
        elif existing is None:
            session.add(m.CustomFieldValue(definition_id=definition_id, record_id=record_id, value=value))
        else:
            existing.value = value
            session.add(existing)
    session.flush()


def set_values(session: Session, ref: RecordRef, values: Mapping[str, Any]) -> None:
    """Set some custom values of one record (others unchanged)."""
    errors = FieldErrors()
    converted = check_values(session, ref.type.value, values, errors=errors, partial=True)
    if errors:
        raise ValidationError(errors.errors)
    store_values(session, ref.id, converted)


def get_values(session: Session, ref: RecordRef) -> dict[str, Any]:
    """Key -> typed value for every custom field the record has a value for."""
    rows = session.execute(
        select(m.CustomFieldDefinition, col(m.CustomFieldValue.value))
        .join(m.CustomFieldValue, col(m.CustomFieldValue.definition_id) == col(m.CustomFieldDefinition.id))
        .where(
            col(m.CustomFieldDefinition.entity_type) == ref.type.value,
            col(m.CustomFieldValue.record_id) == ref.id,
        )
        .order_by(col(m.CustomFieldDefinition.position), col(m.CustomFieldDefinition.id))
    ).all()
    return {definition.key: _typed(definition, value) for definition, value in rows}


def remove_values(session: Session, ref: RecordRef) -> None:
    ids = select(col(m.CustomFieldDefinition.id)).where(
        col(m.CustomFieldDefinition.entity_type) == ref.type.value
    )
    session.execute(
        delete(m.CustomFieldValue).where(
            col(m.CustomFieldValue.record_id) == ref.id, col(m.CustomFieldValue.definition_id).in_(ids)
        )
    )


@dataclass(frozen=True)
class FieldDefinition:
    """A custom field as a form shows it."""

    key: str
    label: str
    field_type: str
    choices: tuple[str, ...]
    required: bool


def field_definitions(session: Session, entity_type: str) -> list[FieldDefinition]:
    """The type's custom fields in their order, as plain data."""
    return [
        FieldDefinition(
            d.key,
            d.label,
            d.field_type,
            tuple((d.choices or "").split("\n")) if d.choices else (),
            d.required,
        )
        for d in definitions_for(session, entity_type)
    ]


def values_of(session: Session, ref: RecordRef) -> tuple[tuple[str, Any], ...]:
    """The record's custom values (key, typed value) in the fields' order: comparable, hashable."""
    return tuple(get_values(session, ref).items())
