"""Engine factory, transactions and schema migrations.

Nothing is created at import time: ``open_database`` builds the engine, brings the schema to the current
revision (with a backup of an older database first) and returns a ``Database``.

Transactions: ``db.read()`` for queries (plain ``BEGIN``: readers never block each other in WAL mode);
``db.write()`` for a use case (``BEGIN IMMEDIATE``: the write lock is taken when the transaction starts, so two
writers queue on the busy timeout instead of failing halfway; on PostgreSQL an advisory lock does the same). A use case owns one ``write()``; the service
helpers it calls flush but never commit.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session

from crm_tui.core import search_index
from crm_tui.core.errors import DatabaseError
from crm_tui.core.private_files import create_private_file, private_dir

if TYPE_CHECKING:
    import psycopg

# The newest migration revision this code knows. A test keeps it equal to Alembic's head, so a start-up on an
# up-to-date database needs no Alembic import at all.
SCHEMA_HEAD = "0025"

BUSY_TIMEOUT_MS = 30_000
WRITER_LOCK_KEY = 0x63726D747569  # "crmtui": PostgreSQL's advisory lock that writers queue on
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for ``url``; for SQLite with WAL, foreign keys, a busy timeout and our own BEGIN."""
    if not url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, pool_pre_ping=True)

        @event.listens_for(engine, "begin")
        def _on_begin_server(connection: Any) -> None:
            # Writers queue as on SQLite (BEGIN IMMEDIATE): a use case that reads, decides and writes (a sync
            # lock, a duplicate check, an edit's guard) never interleaves with another instance's. Held to the
            # end of the transaction; readers are never blocked.
            if connection.get_execution_options().get("crm_begin") == "immediate":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITER_LOCK_KEY})")

        return engine
    engine = create_engine(
        url,
        echo=echo,
        connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
    )

    file = database_path(url)
    if file is not None:

        @event.listens_for(engine, "do_connect")
        def _on_do_connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> sqlite3.Connection:
            return _connect_sqlite(file, cargs, cparams)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Let SQLAlchemy (not pysqlite) decide where transactions begin: see _on_begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if url not in ("sqlite://", "sqlite:///:memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
            # Checkpoint every 32 MiB of log rather than SQLite's 4 MiB: a mail sync writes megabytes per
            # batch, and each checkpoint syncs the disk twice (a fifth of a first sync's time at 4 MiB). The
            # log is cut back to that size after a checkpoint.
            cursor.execute("PRAGMA wal_autocheckpoint = 8192")
            cursor.execute(f"PRAGMA journal_size_limit = {32 * 2**20}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get("crm_begin") == "immediate":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")

    return engine


# A disk with less free space than this is full for the database (SQLite needs room to work).
FULL_BELOW = 256 * 1024


def database_path(url: str) -> Path | None:
    """The file of a SQLite database URL (without its ``?options``); None for a server or one in memory."""
    if not url.startswith("sqlite:///") or url in ("sqlite:///:memory:", "sqlite:///"):
        return None
    return Path(url.removeprefix("sqlite:///").split("?", 1)[0])


def disk_full(folder: Path | None) -> bool:
    """Whether the disk holding ``folder`` has (almost) no free space left."""
    if folder is None:
        return False
    try:
        status = os.statvfs(folder)
    except OSError:
        return False
    return status.f_bavail * status.f_frsize < FULL_BELOW


def _connect_sqlite(file: Path, cargs: Any, cparams: Any) -> sqlite3.Connection:
    """A connection to a SQLite file, which can read it even when its disk is full.

    Reading a WAL database needs its -shm file (32 KiB, mapped) and its -wal; on a full disk SQLite cannot
    make them and every read ends in "disk I/O error". Then the database is opened so that reading needs no
    new file: immutable (read-only, no locks, no -shm) when no log is pending (the -wal is absent or empty:
    the file is the whole database), else in exclusive locking mode (the log's index kept in memory). Writes
    there fail, and say the disk is full (``describe_db_error``)."""
    connection: sqlite3.Connection = sqlite3.connect(*cargs, **cparams)
    try:
        connection.execute("PRAGMA schema_version").fetchall()  # reads the file: opens -wal and -shm if WAL
        return connection
    except sqlite3.OperationalError:
        if not disk_full(file.parent):
            return connection  # the error comes back from the first statement, as before
    connection.close()
    wal = file.with_name(file.name + "-wal")
    try:
        pending = wal.stat().st_size > 0
    except OSError:
        pending = False
    if not pending:
        params = {key: value for key, value in cparams.items() if key != "uri"}
        connection = sqlite3.connect(f"{file.resolve().as_uri()}?immutable=1", *cargs[1:], uri=True, **params)
        return connection
    connection = sqlite3.connect(*cargs, **cparams)
    connection.execute("PRAGMA locking_mode = EXCLUSIVE")
    return connection


def describe_db_error(exc: BaseException, folder: Path | None = None) -> str:
    """One line a user can act on, for an error from the database driver. ``folder``: the one holding the
    database file, whose disk is looked at when the driver's words could mean a full disk."""
    text_ = str(getattr(exc, "orig", exc)).strip()
    lowered = text_.lower()
    if "database is locked" in lowered or "database table is locked" in lowered:
        return "the database is busy (another crm-tui is writing); try again"
    if any(
        words in lowered for words in ("disk i/o error", "disk is full", "readonly", "read-only")
    ) and disk_full(folder):
        return (
            f"the disk holding the database ({folder}) is full: nothing was saved; free some space there and "
            "try again"
        )
    if "disk is full" in lowered or "database or disk is full" in lowered:
        return "the disk is full: nothing was saved; free some space and try again"
    if "readonly" in lowered or "read-only" in lowered:
        return "the database file is read-only: nothing was saved"
    if "malformed" in lowered or "not a database" in lowered:
        return "the database file is damaged or not a crm-tui database"
    if "unable to open" in lowered:
        return "the database file cannot be opened (check the folder and its permissions)"
    return f"database error: {text_.splitlines()[0] if text_ else type(exc).__name__}"


def execute_core(session: Session, statement: Any, params: Any = None) -> Any:
    """A Core statement (no ORM entities) on the session's connection, after writing what the session holds.
    About four times less overhead than ``session.execute`` (measured: 19 vs 79 us an insert), for the hot
    paths that run thousands of times (automation firing)."""
    session.flush()
    return session.connection().execute(statement, params)


class Database:
    """The engine plus the two kinds of transaction the app uses."""

    def __init__(self, engine: Engine, url: str, *, lock_fd: int | None = None):
        self.engine = engine
        self.url = url
        self._writer = engine.execution_options(crm_begin="immediate")
        self._lock_fd = lock_fd  # a SQLite file's lock, held shared while open (see ``held_alone``)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def sqlite_file(self) -> str | None:
        """The path of a SQLite database file; None for PostgreSQL or a database in memory."""
        path = self.engine.url.database if self.is_sqlite else None
        return path if path and path != ":memory:" else None

    @property
    def folder(self) -> Path | None:
        """The folder holding a SQLite database file (whose disk may fill up); None otherwise."""
        path = self.sqlite_file
        return Path(path).parent if path else None

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only unit of work (rolled back at the end)."""
        session = Session(self.engine, expire_on_commit=False, autoflush=False)
        try:
            yield session
        except (OperationalError, DBAPIError) as exc:
            raise DatabaseError(describe_db_error(exc, self.folder)) from exc
        finally:
            # close() ends the read transaction and detaches the rows with their loaded values, so they stay
            # readable after the block (a rollback would expire them).
            session.close()

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One use case: takes the write lock at its start, commits at the end, rolls back on any error."""
        session = Session(self._writer, expire_on_commit=False)
        try:
            yield session
            session.commit()
        except (OperationalError, DBAPIError) as exc:
            with suppress(
                OperationalError, DBAPIError
            ):  # a connection that failed to open has nothing to undo
                session.rollback()
            raise DatabaseError(describe_db_error(exc, self.folder)) from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
        if self._lock_fd is not None:
            with suppress(OSError):
                os.close(self._lock_fd)  # closing the file lets go of its lock
            self._lock_fd = None

    @contextmanager
    def checkpointing(self, interval: float = 0.05) -> Iterator[None]:
        """Copy the write-ahead log into the database file from a thread of its own while the block runs.

        A bulk writer (the mail sync) would otherwise do that copy, and its two disk syncs, inside its own
        commits whenever the log passes ``wal_autocheckpoint``: a third of a first sync's store time. Here a
        PASSIVE checkpoint runs every ``interval`` on a connection of its own; it never blocks the writer or a
        reader, and the driver lets go of the GIL while it works, so the copy overlaps the writer's next
        batch. SQLite files only (a no-op otherwise); what is durable and when is as before."""
        path = self.sqlite_file
        if path is None:
            yield
            return
        stop = threading.Event()

        def run() -> None:
            try:
                connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            except sqlite3.Error:
                return
            try:
                connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                connection.execute("PRAGMA synchronous = NORMAL")
                while not stop.wait(interval):
                    with suppress(sqlite3.Error):  # busy or locked now: the next round, or the writer's own
                        connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                connection.close()

        thread = threading.Thread(target=run, name="crm-tui checkpoint", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


CHANGE_CHANNEL = "crm_tui_changes"


def ensure_change_notices(connection: Any) -> None:
    """On PostgreSQL every table notifies ``CHANGE_CHANNEL`` when a transaction that wrote to it commits
    (a statement trigger: one notice per transaction, however many rows), so other instances can show the
    change. Run after every migration: a table a migration adds gets its trigger too."""
    if connection.dialect.name != "postgresql":
        return
    connection.exec_driver_sql(
        "CREATE OR REPLACE FUNCTION crm_tui_changed() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN PERFORM pg_notify('{CHANGE_CHANNEL}', ''); RETURN NULL; END $$"
    )
    have = {
        row[0]
        for row in connection.exec_driver_sql(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname = 'crm_tui_changed' AND c.relnamespace = current_schema()::regnamespace"
        )
    }
    for table in inspect(connection).get_table_names():
        if table not in have:
            connection.exec_driver_sql(
                f'CREATE TRIGGER crm_tui_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "{table}" '
                "FOR EACH STATEMENT EXECUTE FUNCTION crm_tui_changed()"
            )


class ChangeWatch:
    """Tells whether anyone (another instance, a headless command, a sync) committed to the database since
    the last look, on a connection of its own. SQLite: ``PRAGMA data_version`` (one page read). PostgreSQL:
    LISTEN on ``CHANGE_CHANNEL``, whose notices the triggers send at commit. ``changed()`` never raises: a
    look that cannot be made now (the server away) says "unchanged" and reconnects next time, then says
    "changed" once, as anything may have happened meanwhile."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._connection: Any = None
        self._version: int | None = None
        self._notices = 0
        self._lost = False

    def changed(self) -> bool:
        try:
            return self._look()
        except Exception:  # noqa: BLE001 - the server or file away: looked at again next time
            self.close()
            self._lost = True
            return False

    def _look(self) -> bool:
        if self.db.is_sqlite:
            if not self.db.engine.url.database:
                return False
            if self._connection is None:
                self._connection = sqlite3.connect(self.db.engine.url.database, check_same_thread=False)
            version = self._connection.execute("PRAGMA data_version").fetchone()[0]
            changed = self._version is not None and version != self._version
            self._version = version
            return changed
        if self._connection is None:
            pooled = self.db.engine.raw_connection()
            # PostgreSQL's driver is psycopg (SQLAlchemy types a driver's connection as Any).
            connection = cast("psycopg.Connection[Any]", pooled.driver_connection)
            pooled.detach()  # ours alone, never back to the pool: it stays in LISTEN
            connection.autocommit = True
            connection.add_notify_handler(self._notice)
            connection.execute(f"LISTEN {CHANGE_CHANNEL}")
            self._connection = connection
            self._notices = 0
            if self._lost:
                self._lost = False
                return True
            return False
        self._connection.execute("SELECT 1")  # delivers the notices that arrived meanwhile
        changed, self._notices = self._notices > 0, 0
        return changed

    def _notice(self, _notice: Any) -> None:
        self._notices += 1

    def close(self) -> None:
        if self._connection is not None:
            with suppress(Exception):  # closing a broken connection
                self._connection.close()
            self._connection = None


def _current_revision(connection: Any) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
    return row[0] if row else None


def _user_tables(connection: Any) -> list[str]:
    return [name for name in inspect(connection).get_table_names() if name != "alembic_version"]


def backup_sqlite(connection: Any, target: Path) -> None:
    """A consistent copy of the open SQLite database (the online backup API)."""
    source = connection.connection.driver_connection
    create_private_file(target)
    try:
        destination = sqlite3.connect(str(target))
        try:
            source.backup(destination)
        finally:
            destination.close()
    except BaseException:
        with suppress(OSError):  # a partial copy (a full disk) is no backup: nothing is left behind
            target.unlink()
        raise


def known_revisions() -> list[str]:
    folder = MIGRATIONS_DIR / "versions"
    return sorted(path.name.split("_", 1)[0] for path in folder.glob("[0-9]*_*.py"))


def upgrade(db: Database, *, backup_dir: Path | None = None) -> str | None:
    """Bring the schema to SCHEMA_HEAD. Returns the path of the backup taken of an older database, if any.
    A SQLite database is upgraded only while no other crm-tui has it open (one started before this version was
    installed would go on using the old schema); one that another process upgraded meanwhile is just used."""
    with db._writer.connect() as connection, connection.begin():
        current = _current_revision(connection)
    if current == SCHEMA_HEAD:
        return None
    if current is None or db._lock_fd is None:
        return _upgrade(db, backup_dir=backup_dir)
    with _alone_for_upgrade(db, current) as needed:
        return _upgrade(db, backup_dir=backup_dir) if needed else None


@contextmanager
def _alone_for_upgrade(db: Database, current: str) -> Iterator[bool]:
    """The database's lock held alone for an upgrade (yields True), or False once another process has
    upgraded it meanwhile; the lock is held shared again afterwards. Waits a while for others to close it."""
    fd = db._lock_fd
    assert fd is not None
    deadline = time.monotonic() + RESTORE_WAIT
    fcntl.flock(fd, fcntl.LOCK_UN)  # our own shared hold would stand in the way
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                yield True
                return
            except BlockingIOError:
                pass
            with db._writer.connect() as connection, connection.begin():
                if _current_revision(connection) == SCHEMA_HEAD:
                    yield False  # another crm-tui of this version did it
                    return
            if time.monotonic() > deadline:
                raise DatabaseError(
                    f"the database must be upgraded to this crm-tui's schema ({current} to {SCHEMA_HEAD}), but "
                    "another crm-tui (one started before this version, or a sync) has it open: close it and "
                    "start again"
                )
            time.sleep(0.1)
    finally:
        fcntl.flock(fd, fcntl.LOCK_SH)


def sqlite_driver(connection: Connection) -> sqlite3.Connection:
    driver = connection.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    return driver


def _upgrade(db: Database, *, backup_dir: Path | None) -> str | None:
    backup_path: str | None = None
    with db._writer.connect() as connection:
        if db.is_sqlite:
            # Table rebuilds (batch migrations) need foreign keys off; outside a transaction, on this connection.
            sqlite_driver(connection).execute("PRAGMA foreign_keys = OFF")
        try:
            with connection.begin():
                current = _current_revision(connection)
            if current == SCHEMA_HEAD:
                return None
            if (
                current is not None
                and db.is_sqlite
                and backup_dir is not None
                and current in known_revisions()
            ):
                # Before the write transaction: the online backup cannot copy from inside one.
                private_dir(backup_dir)
                target = backup_dir / f"{Path(db.engine.url.database or 'crm').stem}.before-{SCHEMA_HEAD}.bak"
                backup_sqlite(connection, target)
                backup_path = str(target)
            with connection.begin():
                # Checked again under the write lock: another process may have upgraded meanwhile.
                current = _current_revision(connection)
                if current == SCHEMA_HEAD:
                    return backup_path
                if current is None and _user_tables(connection):
                    raise DatabaseError(
                        f"{db.url}: this database was not made by crm-tui (no schema version)"
                    )
                if current is not None and current not in known_revisions():
                    raise DatabaseError(
                        f"the database is at schema revision {current}, newer than this crm-tui knows "
                        f"({SCHEMA_HEAD}): upgrade crm-tui"
                    )
                run_migrations(connection)
                search_index.ensure(connection)
                ensure_change_notices(connection)
                if db.is_sqlite:
                    problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if problems:
                        raise DatabaseError(
                            f"migration left {len(problems)} broken references; nothing changed"
                        )
        finally:
            if db.is_sqlite:
                sqlite_driver(connection).execute("PRAGMA foreign_keys = ON")
    return backup_path


def run_migrations(connection: Any, revision: str = "head") -> None:
    """Alembic's upgrade to ``revision`` on ``connection``, in the caller's transaction."""
    # Alembic loads slowly: only when the schema is upgraded
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


RESTORE_WAIT = 15.0  # seconds an opening waits for a restore of its database to end


def lock_file(database_file: Path) -> Path:
    """The file whose lock says who has a SQLite database open: every crm-tui holds it shared, a restore alone.
    (SQLite's own locks cannot say it: a process that merely has the file open holds none of them.)"""
    return database_file.with_name(database_file.name + ".lock")


def _lock_shared(database_file: Path) -> int | None:
    """Hold the database's lock shared for as long as it is open; wait (a while) for a restore to end."""
    try:
        fd = os.open(lock_file(database_file), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None  # a read-only folder, say: nothing to coordinate with anyone who could restore it
    deadline = time.monotonic() + RESTORE_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise DatabaseError(
                    f"{database_file} is being restored from a backup: try again when the restore is done"
                ) from None
            time.sleep(0.1)
        except OSError:
            os.close(fd)
            return None  # a file system without locks


@contextmanager
def held_alone(database_file: Path, busy: str) -> Iterator[None]:
    """The database's lock held alone for the block (a restore): no crm-tui has the database open, and
    none opens it until the block ends. Raises DatabaseError(``busy``) when one has it open."""
    private_dir(database_file.parent, tighten_existing=False)
    fd = os.open(lock_file(database_file), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DatabaseError(busy) from None
        yield
    finally:
        os.close(fd)


def open_database(url: str, *, migrate: bool = True, backup_dir: Path | None = None) -> Database:
    """Open (creating if need be) the database at ``url`` and bring its schema up to date."""
    lock_fd = None
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        file = Path(url.removeprefix("sqlite:///"))
        try:
            private_dir(file.parent, tighten_existing=False)
        except OSError as exc:
            raise DatabaseError(
                f"cannot create the database folder {file.parent}: {exc.strerror or exc}"
            ) from exc
        if "?" not in url:
            try:
                # Made 0600 before SQLite makes it with the umask's mode; its -wal and -shm take the same mode.
                create_private_file(file)
            except OSError as exc:
                raise DatabaseError(f"cannot create the database file {file}: {exc.strerror or exc}") from exc
        lock_fd = _lock_shared(Path(file.as_posix().split("?", 1)[0]))
    db = Database(make_engine(url), url, lock_fd=lock_fd)
    if migrate:
        try:
            upgrade(db, backup_dir=backup_dir)
        except (OperationalError, DBAPIError, sqlite3.Error) as exc:  # sqlite3's own: the backup before it
            db.dispose()
            said = describe_db_error(exc, db.folder)
            if disk_full(db.folder):  # reading needs no space (see _connect_sqlite): this was the upgrade
                said = f"the database must first be upgraded to this crm-tui's schema, but {said}"
            raise DatabaseError(said) from exc
        except BaseException:
            db.dispose()
            raise
    return db
