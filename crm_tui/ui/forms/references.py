"""Completion of a form's reference fields: the typed start of a name becomes ``Name [type:id]``."""

from __future__ import annotations

from collections.abc import Callable

from crm_tui.core.services.references import suggest_reference
from crm_tui.runtime.context import AppContext


def suggester(context: AppContext) -> Callable[[str, str], str | None]:
    """(ref type, typed text) -> the completion, read from the database."""

    def suggest(ref_type: str, text: str) -> str | None:
        with context.database().read() as session:
            return suggest_reference(session, ref_type, text)

    return suggest
