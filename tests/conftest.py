"""Test set-up: every test runs with its own temporary home, a pinned clock and no user config."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from crm_tui.core.db import Database, open_database, sqlite_url

NOW = datetime(2026, 11, 22, 8, 30, tzinfo=UTC)
DEMO_NOW = "2026-11-22T09:00:00+01:00"
ZONE = ZoneInfo("Europe/Berlin")
SHARED = Path(os.environ.get("CRM_TUI_SHARED", Path(__file__).resolve().parents[2] / "shared"))

PostgresUrls = Callable[[], str]  # the postgres_urls fixture: each call makes a new database, returns its URL
SmallDisk = Callable[[int], Path]  # the small_disk fixture: mounts a tmpfs of that many KiB, returns its path


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the developer's own data and config out of tests."""
    home = tmp_path / "home"
    monkeypatch.setenv("CRM_TUI_HOME", str(home))
    monkeypatch.delenv("CRM_TUI_NOW", raising=False)
    monkeypatch.setenv("TZ", "Europe/Berlin")
    return home


@pytest.fixture
def now() -> datetime:
    return NOW


POSTGRES_ENV = "CRM_TUI_TEST_POSTGRES"


def _admin_statement(engine: Any, statement: Any) -> None:
    """CREATE/DROP DATABASE, tried again a few times: two test processes creating databases at the same moment
    can meet PostgreSQL's "template1 is being accessed by other users", and a drop can meet autovacuum."""
    import random
    import time

    from sqlalchemy.exc import OperationalError, ProgrammingError

    for attempt in range(12):
        try:
            with engine.connect() as connection:
                connection.execute(statement)
            return
        except ProgrammingError as exc:
            if "already exists" in str(exc) and attempt > 0:
                return  # an earlier try went through, though its answer was lost
            if "pg_signal_backend" not in str(exc) or attempt == 11:
                raise
            # DROP ... WITH (FORCE) met an autovacuum worker in the database (a test that deleted much starts
            # one), which a role without pg_signal_backend may not end: it is gone a moment later. Not a wait
            # for something to happen: the pause between tries of the statement, which is the condition.
            time.sleep(0.2 * (attempt + 1))
        except OperationalError:
            if attempt == 11:
                raise
            # The pause between tries of the statement (the condition), spread out so racing processes part.
            time.sleep(0.1 * (attempt + 1) + random.random() * 0.3)  # noqa: S311 - spreading out retries


def _need_postgres() -> str:
    admin_url = os.environ.get(POSTGRES_ENV)
    if not admin_url:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the core tests on PostgreSQL too: {POSTGRES_ENV} is not set")
        pytest.skip(
            f"SKIPPED LOUDLY: no PostgreSQL for the core tests (set {POSTGRES_ENV}="
            "postgresql+psycopg://USER:PASSWORD@127.0.0.1/postgres; .ci/run does)"
        )
    return admin_url


@pytest.fixture
def postgres_urls() -> Iterator[PostgresUrls]:
    """Makes empty PostgreSQL databases of the test's own (``postgres_urls()`` returns the URL of a new one)
    on the server CRM_TUI_TEST_POSTGRES names, dropped after the test. Skips loudly without that server,
    except in CI, where .ci/run starts one."""
    import uuid

    from sqlalchemy import create_engine, text

    admin_url = _need_postgres()
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def make() -> str:
        name = f"crm_test_{uuid.uuid4().hex[:12]}"
        _admin_statement(admin, text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return admin_url.rsplit("/", 1)[0] + f"/{name}"

    try:
        yield make
    finally:
        for name in made:
            _admin_statement(admin, text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The test's database, once a SQLite file and once a PostgreSQL database of its own (``postgres_urls``)."""
    if request.param == "sqlite":
        database = open_database(sqlite_url(tmp_path / "test.sqlite3"))
        yield database
        database.dispose()
        return
    make = request.getfixturevalue("postgres_urls")
    database = open_database(make())
    try:
        yield database
    finally:
        database.dispose()


def corpus_dir(name: str = "mail") -> Path:
    """A shared real-world mail corpus (``mail``, or ``mail2``: bounces, hostile and odd mail); tests that need
    it skip loudly where it is absent, and fail in CI."""
    folder = SHARED / "corpus" / name
    if not folder.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"the shared mail corpus is missing in CI: {folder}")
        pytest.skip(f"SKIPPED LOUDLY: the shared mail corpus is not at {folder} (set CRM_TUI_SHARED)")
    return folder


def corpus2_dir() -> Path:
    return corpus_dir("mail2")


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo home built once per test process (the demo takes a couple of seconds to make)."""
    from crm_tui.cli.main import main

    home = tmp_path_factory.mktemp("demo-template")
    old_tz = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Berlin"
    try:
        assert (
            main(["--home", str(home), "--demo", "--now", DEMO_NOW, "contacts", "list", "--limit", "1"]) == 0
        )
    finally:
        if old_tz is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old_tz
    return home


@pytest.fixture
def demo_home(demo_template: Path, tmp_path: Path) -> Path:
    import shutil

    home = tmp_path / "demo-home"
    shutil.copytree(demo_template, home)
    return home


@pytest.fixture
def make_app() -> Iterator[Any]:
    """``make_app(home, demo=True, **options)``: the app built as the CLI builds it (pinned clock), recording
    every notification it shows (tests.ui.keywalk.RecordingApp); its context is closed after the test."""
    from tests.ui.helpers import make_context
    from tests.ui.keywalk import RecordingApp

    made: list[Any] = []

    def build(home: Path, *, demo: bool = True, **options: Any) -> Any:
        context = make_context(home, demo=demo)
        made.append(context)
        return RecordingApp(context, **options)

    yield build
    for context in made:
        context.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """A real small filesystem (tmpfs) to fill: `small_disk(size_kib)` mounts one and returns its path; tests
    of full-disk faults write there. Mounting needs root, which CI runs as; elsewhere the test fails under CI
    and is skipped loudly on a developer's machine."""
    import subprocess

    mounted: list[Path] = []

    def mount(size_kib: int = 4096) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0700", "tmpfs", str(where)],
            capture_output=True,
            text=True,
        )
        if done.returncode:
            if os.environ.get("CI"):
                pytest.fail(f"CI must run the full-disk tests (mount tmpfs failed: {done.stderr.strip()})")
            pytest.skip(f"SKIPPED LOUDLY: cannot mount a small tmpfs here ({done.stderr.strip()})")
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill_disk(where: Path, leave_bytes: int = 0) -> None:
    """Fill the filesystem at `where`, leaving about `leave_bytes` free."""
    free = os.statvfs(where).f_bavail * os.statvfs(where).f_frsize
    with open(where / "filler", "wb") as out, contextlib.suppress(OSError):
        out.write(b"\0" * max(0, free - leave_bytes))
