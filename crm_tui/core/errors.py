"""The errors the core raises. Each carries a message fit to show a user as it is."""

from __future__ import annotations

from collections.abc import Mapping


class CrmError(Exception):
    """Base of every error crm-tui reports to the user (one clear line, no traceback)."""


class ConfigError(CrmError):
    """The configuration file or an option is wrong."""


class NotFound(CrmError):
    """A record that was asked for does not exist."""


class DatabaseError(CrmError):
    """The database cannot be opened, migrated or written (locked, full disk, corrupt)."""


class ValidationError(CrmError):
    """One or more fields are invalid. ``errors`` maps each bad field to what is wrong with it."""

    def __init__(self, errors: Mapping[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{name}: {message}" for name, message in self.errors.items()))

    @classmethod
    def single(cls, field: str, message: str) -> ValidationError:
        return cls({field: message})


class FieldErrors:
    """Collects field errors while a service checks its input, then raises them all at once."""

    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def add(self, field: str, message: str) -> None:
        self.errors.setdefault(field, message)

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)


class RecordChanged(CrmError):
    """An edit was refused: the record changed (or went) since the form that edits it was opened.
    ``current`` is the record as it is now (the service's plain record, ``None`` when it was deleted)."""

    def __init__(self, current: object | None) -> None:
        super().__init__(
            "changed meanwhile"
            if current is not None
            else "this record was deleted by someone else meanwhile: nothing was saved"
        )
        self.current = current
