"""Saving a record's form as one use case, and the edit check of records others may change too.

A form for an existing record remembers the record as it showed it (the service's plain record, with its
``updated_at``); the update service compares it with the record as it is inside the same write and refuses a
record changed meanwhile (``RecordChanged``). The form then says which of its fields differ (theirs and
yours); saving again writes yours over theirs, knowingly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crm_tui.core.errors import CrmError, RecordChanged
from crm_tui.core.sanitize import terminal_safe
from crm_tui.runtime.context import AppContext
from crm_tui.ui.forms.converter import Converter
from crm_tui.ui.screens.record_form import FormSpec


def save_record(context: AppContext, work: Callable[[Any, Converter], int]) -> int:
    """Run one form's save as one use case: conversion errors and service errors together, nothing saved on
    failure. Runs in the form's save worker (a thread), never on the UI thread."""
    with context.database().write() as session:
        return work(session, Converter(session, context))


class OpenedAs:
    """The record as the form showed it: what the update expects to find (None for a new record)."""

    def __init__(self, record: Any | None) -> None:
        self.record = record


def checks_edits(spec: FormSpec, opened: OpenedAs, values_of: Callable[[Any], dict[str, str]]) -> FormSpec:
    """Turn the update's refusal (``RecordChanged``) into the form's message with both versions of each field
    that differs; the next save expects the record as it is now (so it writes over theirs)."""
    if opened.record is None:
        return spec
    labels = {f.name: f.label for f in spec.fields}
    shown = dict(spec.values)
    inner = spec.save

    def save(values: dict[str, str]) -> int:
        nonlocal shown
        try:
            return inner(values)
        except RecordChanged as changed:
            if changed.current is None:
                raise CrmError(str(changed)) from None
            theirs = values_of(changed.current)
            differ = [
                f"  {labels.get(k, k)}: now {terminal_safe(theirs.get(k, ''), max_length=60)!r}, "
                f"yours {terminal_safe(values.get(k, ''), max_length=60)!r}"
                for k in labels
                if theirs.get(k, "") != shown.get(k, "")
            ]
            opened.record, shown = changed.current, theirs
            raise CrmError(
                "Someone else changed this record while you edited it; your edit was not saved.\n"
                + ("\n".join(differ) if differ else "  (no field of this form differs)")
                + "\nctrl+s saves yours over theirs · esc keeps theirs"
            ) from None

    spec.save = save
    return spec
