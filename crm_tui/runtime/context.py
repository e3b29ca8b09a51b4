"""What every command and the app need: paths, settings, clock, time zone and (lazily) the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, tzinfo
from pathlib import Path

from sqlalchemy.engine import make_url

from crm_tui.core.clock import Clock
from crm_tui.core.db import Database, open_database, sqlite_url
from crm_tui.core.services.attachments import DocumentStore, store_for
from crm_tui.core.services.users import current_user
from crm_tui.mail.secrets import secret_from
from crm_tui.runtime.demo import build_demo, demo_exists
from crm_tui.runtime.paths import Paths
from crm_tui.runtime.settings import Settings


@dataclass
class AppContext:
    paths: Paths
    settings: Settings
    clock: Clock
    zone: tzinfo
    demo: bool = False
    db_url: str | None = None
    _db: Database | None = field(default=None, repr=False)

    @property
    def database_url(self) -> str:
        if self.db_url:
            return self.db_url
        if self.settings.database_url and not self.demo:
            return self.settings.database_url
        return sqlite_url(self.paths.database_file(demo=self.demo))

    @property
    def documents_dir(self) -> Path:
        return self.paths.documents_dir(demo=self.demo)

    def document_store(self) -> DocumentStore:
        """Where documents live: files beside a local SQLite database, in a shared database itself."""
        return store_for(self.database(), self.documents_dir)

    def today(self) -> date:
        return self.clock.now().astimezone(self.zone).date()

    def _url_with_password(self) -> str:
        """The database URL with its password from ``database_password`` (keyring, environment or command);
        never stored: only in memory, for the connection."""
        url = self.database_url
        source = self.settings.database_password
        if not source or url.startswith("sqlite"):
            return url
        parsed = make_url(url)
        if parsed.password is not None:
            return url
        kind, _, ref = source.partition(":")
        password = secret_from("the database", kind, ref or None, keyring_key=database_keyring_key(url),
                               store_hint="run 'crm-tui database-password'")  # fmt: skip
        return parsed.set(password=password).render_as_string(hide_password=False)

    def database(self) -> Database:
        """The database, opened (and migrated) on first use; in demo mode filled with the demo data once."""
        if self._db is None:
            self.paths.ensure()
            db = open_database(self._url_with_password(), backup_dir=self.paths.data_dir / "backups")
            if self.demo:
                self._ensure_demo(db)
            self._db = db
        return self._db

    def _ensure_demo(self, db: Database) -> None:
        with db.read() as session:
            if demo_exists(session):
                return
        with db.write() as session:
            # Checked again under the write lock: two processes starting at once build it once.
            if not demo_exists(session):
                build_demo(session, today=self.today(), now=self.clock.now(), zone=self.zone)

    def me_id(self) -> int | None:
        with self.database().read() as session:
            user = current_user(session, self.settings.me)
            return user.id if user else None

    def partner_id(self) -> int | None:
        """The partner organization of the current user (None for our own company): their lists show only
        the deals that partner installs or resells."""
        with self.database().read() as session:
            user = current_user(session, self.settings.me)
            return user.organization_id if user else None

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()
            self._db = None


def database_keyring_key(url: str) -> str:
    """The keyring entry (service crm-tui) of a database's password: user, host, port and database."""
    parsed = make_url(url)
    return f"database:{parsed.username or ''}@{parsed.host or ''}:{parsed.port or ''}/{parsed.database or ''}"
