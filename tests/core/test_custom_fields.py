"""Custom field definitions and values, checked by type."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import Session

from crm_tui.core import models as m
from crm_tui.core.db import Database
from crm_tui.core.errors import ValidationError
from crm_tui.core.services import custom_fields as cf
from crm_tui.core.services.contacts import ContactInput, create_contact
from crm_tui.core.types import RecordRef, RecordType
from tests.utils import factories
from tests.utils.ids import id_of


def define(session: Session, **kwargs: Any) -> m.CustomFieldDefinition:  # kwargs: FieldDefinitionInput's
    kwargs.setdefault("entity_type", "contact")
    return cf.define_field(session, cf.FieldDefinitionInput(**kwargs))


def test_definitions_are_validated(db: Database) -> None:
    with pytest.raises(ValidationError) as excinfo, db.write() as session:
        define(session, entity_type="invoice", key="1bad", label="", field_type="colour")
    assert set(excinfo.value.errors) == {"entity_type", "key", "label", "field_type"}
    with pytest.raises(ValidationError, match="needs at least one choice"), db.write() as session:
        define(session, key="size", label="Size", field_type="choice", choices=[" "])
    with db.write() as session:
        define(session, key="size", label="Size")
        with pytest.raises(ValidationError, match="already has a field"):
            define(session, key="size", label="Size again")


def test_values_are_converted_and_checked_by_type(db: Database, now: datetime) -> None:
    with db.write() as session:
        define(session, key="budget", label="Budget", field_type="number")
        define(session, key="since", label="Customer since", field_type="date")
        define(session, key="vip", label="VIP", field_type="boolean")
        define(session, key="tier", label="Tier", field_type="choice", choices=["gold", "silver"])
        person = factories.contact(session, now)
        ref = RecordRef(RecordType.CONTACT, id_of(person))
        cf.set_values(
            session, ref, {"budget": "1250,50", "since": "2024-02-29", "vip": "yes", "tier": "gold"}
        )
        assert cf.get_values(session, ref) == {
            "budget": Decimal("1250.5"),
            "since": date(2024, 2, 29),
            "vip": True,
            "tier": "gold",
        }
        with pytest.raises(ValidationError) as excinfo:
            cf.set_values(
                session,
                ref,
                {"budget": "lots", "since": "2024-02-30", "vip": "maybe", "tier": "bronze", "nope": 1},
            )
        assert set(excinfo.value.errors) == {
            "custom.budget",
            "custom.since",
            "custom.vip",
            "custom.tier",
            "custom.nope",
        }
        cf.set_values(session, ref, {"tier": ""})
        assert "tier" not in cf.get_values(session, ref)


def test_required_fields_are_required_on_create(db: Database, now: datetime) -> None:
    with db.write() as session:
        define(session, key="language", label="Language", required=True)
        with pytest.raises(ValidationError, match="custom.language: Language is required"):
            create_contact(session, ContactInput(last_name="X"), now=now)
        person = create_contact(session, ContactInput(last_name="X", custom={"language": "German"}), now=now)
        assert cf.get_values(session, RecordRef(RecordType.CONTACT, id_of(person))) == {"language": "German"}


def test_a_field_in_use_cannot_change_its_type(db: Database, now: datetime) -> None:
    with db.write() as session:
        field = define(session, key="note", label="Note")
        person = factories.contact(session, now)
        cf.set_values(session, RecordRef(RecordType.CONTACT, id_of(person)), {"note": "hello"})
        with pytest.raises(ValidationError, match="the type cannot change"):
            cf.update_field(
                session, id_of(field), cf.FieldDefinitionInput("contact", "note", "Note", field_type="number")
            )
