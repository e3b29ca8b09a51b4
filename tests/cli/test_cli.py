"""The command-line conventions: global options, TYPE:ID ids, JSON shape, --now, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crm_tui import __version__
from crm_tui.cli.main import main
from tests.conftest import DEMO_NOW


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], home: Path, *argv: str) -> list[dict[str, Any]]:
    code, out, err = run(capsys, "--home", str(home), "--demo", "--now", DEMO_NOW, *argv, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert isinstance(data, list) and all(isinstance(row, dict) for row in data)
    return data


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert (code, out.strip()) == (0, f"crm-tui {__version__}")
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for word in ("--home", "--demo", "--db", "--now", "contacts", "opportunities", "activities"):
        assert word in out


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["frobnicate"], "invalid choice"),
        (["contacts"], "required"),
        (["contacts", "list", "--limit", "0"], "must be 1 or more"),
        (["contacts", "list", "--limit", "ten"], "is not a whole number"),
        (["activities", "list", "--from", "2026-13-01"], "not a date"),
        (["--now", "yesterday", "contacts", "list"], "not an ISO-8601 date-time"),
        # Before the first or after the last instant a date-time holds once in UTC (an OverflowError before).
        (["--now", "0001-01-01T00:00:00+14:00", "contacts", "list"], "out of range"),
        (["--now", "9999-12-31T23:59:59-14:00", "contacts", "list"], "out of range"),
        (["automations", "run", "--now", "0001-01-01T00:00:00+14:00"], "out of range"),
        (["contacts", "list", "--demo"], "unrecognized arguments: --demo"),
        (["--demo", "--db", "sqlite:///x.db", "contacts", "list"], "exclude each other"),
        (
            ["--demo", "activities", "list", "--from", "2026-11-10", "--to", "2026-11-01"],
            "--to is before --from",
        ),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("crm-tui: usage error:"), err
    assert fragment in err


def test_a_clock_out_of_range_from_the_environment_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_TUI_NOW", "0001-01-01T00:00:00+14:00")
    code, out, err = run(capsys, "--home", str(tmp_path / "home"), "contacts", "list")
    assert (code, out) == (2, "")
    assert err == (
        "crm-tui: usage error: CRM_TUI_NOW: '0001-01-01T00:00:00+14:00' is out of range: "
        "the clock can be set between the years 1000 and 8999\n"
    )


@pytest.mark.parametrize(
    "now", ["1000-01-01T00:00:00+14:00", "8999-12-31T23:59:59-12:00", "1000-01-01T00:00:00", "8999-12-31"]
)
def test_the_clock_can_be_set_to_the_first_and_last_years_its_message_names(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, now: str
) -> None:
    """It says "between the years 1000 and 8999": 1000-01-01T00:00+14:00 (still 999 in UTC) was refused."""
    code, out, err = run(capsys, "--home", str(tmp_path / "home"), "--now", now, "contacts", "list")
    assert code == 0, err
    code, out, err = run(capsys, "--home", str(tmp_path / "home"), "--now", now.replace("1000-", "0999-").replace("8999-", "9000-"), "contacts", "list")  # fmt: skip
    assert code == 2 and "the clock can be set between the years 1000 and 8999" in err, err


def test_failures_exit_1_with_one_clear_line(capsys: pytest.CaptureFixture[str], demo_home: Path) -> None:
    code, out, err = run(
        capsys, "--home", str(demo_home), "--demo", "opportunities", "list", "--pipeline", "Nope"
    )
    assert code == 1 and out == ""
    assert err == "crm-tui: no pipeline named 'Nope' (pipelines: Sales, Service contracts, Installation)\n"


def test_a_search_of_999_words_says_how_many_it_takes(
    capsys: pytest.CaptureFixture[str], demo_home: Path
) -> None:
    """It was "database error: Expression tree is too large (maximum depth 1000)"."""
    words = " ".join(f"wort{i}" for i in range(999))
    code, out, err = run(capsys, "--home", str(demo_home), "--demo", "search", words)
    assert (code, out) == (1, "")
    assert err == "crm-tui: query: a search takes at most 32 words (this one has 999): leave some out\n"
    code, out, err = run(capsys, "--home", str(demo_home), "--demo", "search", " ".join(words.split()[:32]))
    assert (code, err) == (0, "")
    # Contacts: the first 8 words narrow the list; the others are left out, and it says so.
    many = " ".join(["berg"] * 8 + ["zzzz"] * 991)
    code, out, err = run(capsys, "--home", str(demo_home), "--demo", "contacts", "list", "--search", many)
    assert code == 0 and "Berg" in out
    assert err == "crm-tui: --search takes the first 8 words; the other 991 were left out\n"


def test_a_broken_config_is_reported_in_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text("timezone = [unclosed\n")
    code, _, err = run(capsys, "--home", str(tmp_path), "contacts", "list")
    assert code == 1 and err.count("\n") == 1 and "config.toml" in err
    (tmp_path / "config" / "config.toml").write_text('timezone = "Mars/Olympus"\n')
    code, _, err = run(capsys, "--home", str(tmp_path), "contacts", "list")
    assert code == 1 and "unknown timezone 'Mars/Olympus'" in err


def test_an_internal_error_before_the_context_is_built_is_logged_in_the_home_given(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--home puts everything in one folder, the log of an error met while the command starts too (it went
    to the default home's state folder)."""
    import crm_tui.runtime.settings

    def broken(path: Path) -> None:
        raise RuntimeError("settings reader broke")

    monkeypatch.setattr(crm_tui.runtime.settings, "load_settings", broken)
    monkeypatch.delenv("CRM_TUI_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "default-home"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "default-home" / "state"))
    home = tmp_path / "given"
    assert main(["--home", str(home), "contacts", "list"]) == 1
    err = capsys.readouterr().err
    assert "internal error" in err and str(home) in err, err
    assert "settings reader broke" in "".join(p.read_text() for p in home.rglob("*.log"))
    assert not (tmp_path / "default-home").exists()


def test_a_damaged_database_is_reported_without_a_traceback(tmp_path: Path) -> None:
    broken = tmp_path / "broken.sqlite3"
    broken.write_bytes(b"garbage" * 1000)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "crm_tui",
            "--home",
            str(tmp_path),
            "--db",
            f"sqlite:///{broken}",
            "contacts",
            "list",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr == "crm-tui: the database file is damaged or not a crm-tui database\n"
    assert "Traceback" not in result.stdout + result.stderr


def test_contacts_json_shape(capsys: pytest.CaptureFixture[str], demo_home: Path) -> None:
    rows = run_json(capsys, demo_home, "contacts", "list")
    assert len(rows) >= 150
    first = rows[0]
    assert first["id"].startswith("contact:") and first["id"].split(":")[1].isdigit()
    assert first["organization"] is None or first["organization"].startswith("organization:")
    assert first["owner"].startswith("user:")
    assert isinstance(first["emails"], list) and first["emails"]
    created = datetime.fromisoformat(first["created_at"])
    assert created.tzinfo is not None and created.utcoffset() == timedelta(hours=1), (
        "local time (Europe/Berlin)"
    )
    assert any(len(row["emails"]) > 1 for row in rows), "some contacts have several addresses"


def test_search_and_limit(capsys: pytest.CaptureFixture[str], demo_home: Path) -> None:
    everyone = run_json(capsys, demo_home, "contacts", "list")
    target = everyone[7]
    found = run_json(capsys, demo_home, "contacts", "list", "--search", target["emails"][0])
    assert [row["id"] for row in found] == [target["id"]]
    assert len(run_json(capsys, demo_home, "contacts", "list", "--limit", "3")) == 3


def test_opportunities_json_shape_and_pipeline_filter(
    capsys: pytest.CaptureFixture[str], demo_home: Path
) -> None:
    rows = run_json(capsys, demo_home, "opportunities", "list")
    assert len(rows) >= 60
    service = run_json(capsys, demo_home, "opportunities", "list", "--pipeline", "service contracts")
    assert service and {row["pipeline"] for row in service} == {"Service contracts"}
    with_date = next(row for row in rows if row["expected_close"])
    date.fromisoformat(with_date["expected_close"])
    assert with_date["amount"].replace(".", "").isdigit() and with_date["amount"][-3] == "."
    assert {row["currency"] for row in rows} >= {"EUR"}
    lost = [row for row in rows if row["stage_kind"] == "lost"]
    assert lost and all(row["lost_reason"] for row in lost)


def test_activities_between_local_days(capsys: pytest.CaptureFixture[str], demo_home: Path) -> None:
    rows = run_json(capsys, demo_home, "activities", "list", "--from", "2026-11-22", "--to", "2026-11-22")
    assert rows
    for row in rows:
        start = datetime.fromisoformat(row["start"])
        end = datetime.fromisoformat(row["end"]) if row["end"] else start
        assert start.tzinfo is not None
        assert start.date() <= date(2026, 11, 22) <= end.date() or start.date() == date(2026, 11, 22)
        assert row["person"].startswith(("contact:", "lead:"))
    everything = run_json(capsys, demo_home, "activities", "list")
    assert len(everything) >= 200
    starts = [row["start"] for row in everything]
    assert starts == sorted(starts)


def test_text_output_is_a_table_with_type_ids(capsys: pytest.CaptureFixture[str], demo_home: Path) -> None:
    code, out, _ = run(capsys, "--home", str(demo_home), "--demo", "contacts", "list", "--limit", "2")
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:2] == ["ID", "NAME"] and lines[1].startswith("contact:")
    assert len(lines) == 3


def test_text_output_never_carries_control_characters(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from crm_tui.core.db import open_database, sqlite_url
    from crm_tui.core.services.contacts import ContactInput, create_contact
    from crm_tui.runtime.context import AppContext  # noqa: F401  (same modules the CLI uses)

    db = open_database(sqlite_url(tmp_path / "data" / "crm.sqlite3"))
    with db.write() as session:
        create_contact(
            session,
            ContactInput(first_name="Eve", last_name="Evil\u202eexe"),
            now=datetime.now().astimezone(),
        )
    db.dispose()
    code, out, _ = run(capsys, "--home", str(tmp_path), "contacts", "list")
    assert code == 0 and "\u202e" not in out and "<U+202E>" in out
    code, out, _ = run(capsys, "--home", str(tmp_path), "contacts", "list", "--json")
    assert "\u202e" not in out and json.loads(out)[0]["last_name"] == "Evil\u202eexe"


def test_now_env_pins_the_clock_and_timezone_comes_from_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text('timezone = "Asia/Tokyo"\n')
    monkeypatch.setenv("CRM_TUI_NOW", "2026-03-02T10:00:00+09:00")
    rows = run_json_plain(capsys, tmp_path, "activities", "list")
    starts = [datetime.fromisoformat(row["start"]) for row in rows]
    assert all(s.utcoffset() == timedelta(hours=9) for s in starts), "times shown in the configured zone"
    assert min(starts).date() >= date(2026, 3, 2) - timedelta(days=22)
    assert max(starts).date() <= date(2026, 3, 2) + timedelta(days=22), (
        "the demo is made around the pinned today"
    )


def run_json_plain(capsys: pytest.CaptureFixture[str], home: Path, *argv: str) -> list[dict[str, Any]]:
    code, out, err = run(capsys, "--home", str(home), "--demo", *argv, "--json")
    assert code == 0, err
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


def test_home_env_puts_everything_under_one_folder(tmp_path: Path) -> None:
    env = {**os.environ, "CRM_TUI_HOME": str(tmp_path / "h"), "CRM_TUI_NOW": DEMO_NOW}
    result = subprocess.run(
        [sys.executable, "-m", "crm_tui", "--demo", "contacts", "list", "--limit", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    created = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert created and all(name.startswith("h/") for name in created), created
    assert "h/data/demo.sqlite3" in created


def test_a_fresh_home_gets_its_first_user_from_the_command_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    home = str(tmp_path / "home")
    code, _, err = run(
        capsys,
        "--home",
        home,
        "account",
        "add",
        "work",
        "--preset",
        "gmail",
        "--user",
        "a@gmail.com",
        "--password-env",
        "X",
    )
    assert code == 1 and "crm-tui users add" in err, "the message says how to go on"
    code, out, _ = run(capsys, "--home", home, "users", "add", "Anna Berg", "anna@example.com")
    assert code == 0 and "this is me" in out
    assert run(capsys, "--home", home, "users", "add", "Jonas Weber", "jonas@example.com")[0] == 0
    code, out, _ = run(capsys, "--home", home, "users", "list", "--json")
    assert [(u["name"], u["me"]) for u in json.loads(out)] == [("Anna Berg", True), ("Jonas Weber", False)]
    code, _, err = run(capsys, "--home", home, "users", "add", "Anna Two", "anna@example.com")
    assert code == 1 and "email" in err.lower()


def test_the_database_password_never_sits_in_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """database_url with a password is refused; the password comes from the environment or a command (a wrong
    one is one clear line, not a traceback)."""
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    config = home / "config" / "config.toml"
    config.write_text('database_url = "postgresql+psycopg://crm:secret@127.0.0.1:1/crm"\n')
    code, _, err = run(capsys, "--home", str(home), "contacts", "list")
    assert code == 1 and "must not hold the password" in err
    config.write_text(
        'database_url = "postgresql+psycopg://crm@127.0.0.1:1/crm"\ndatabase_password = "env:CRM_TEST_DB_PASSWORD"\n'
    )
    code, _, err = run(capsys, "--home", str(home), "contacts", "list")
    assert (
        code == 1
        and err.strip() == "crm-tui: the database: the environment variable CRM_TEST_DB_PASSWORD is not set"
    )
    config.write_text(
        'database_url = "postgresql+psycopg://crm@127.0.0.1:1/crm"\ndatabase_password = "command:false"\n'
    )
    code, _, err = run(capsys, "--home", str(home), "contacts", "list")
    assert code == 1 and "the database: the password command exited with 1" in err
    config.write_text(
        'database_url = "postgresql+psycopg://crm@127.0.0.1:1/crm"\ndatabase_password = "pgpass"\n'
    )
    code, _, err = run(capsys, "--home", str(home), "contacts", "list")
    assert code == 1 and 'database_password is "env:VAR"' in err


def test_the_database_password_from_the_environment_opens_postgresql(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from sqlalchemy.engine import make_url

    admin = os.environ.get("CRM_TUI_TEST_POSTGRES")
    if not admin:
        if os.environ.get("CI"):
            pytest.fail("CI runs this on PostgreSQL: CRM_TUI_TEST_POSTGRES is not set")
        pytest.skip("SKIPPED LOUDLY: no PostgreSQL (CRM_TUI_TEST_POSTGRES)")
    import uuid

    from sqlalchemy import create_engine, text

    name = f"crm_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(admin)._replace(database=name)
        home = tmp_path / "home"
        (home / "config").mkdir(parents=True)
        without = url._replace(password=None).render_as_string(hide_password=False)
        (home / "config" / "config.toml").write_text(
            f'database_url = "{without}"\ndatabase_password = "env:CRM_TEST_DB_PASSWORD"\n'
        )
        monkeypatch.setenv("CRM_TEST_DB_PASSWORD", url.password or "")
        code, out, err = run(capsys, "--home", str(home), "users", "add", "Anna Berg", "anna@crm.example")
        assert code == 0, err
        code, out, err = run(capsys, "--home", str(home), "users", "list")
        assert code == 0 and "anna@crm.example" in out
        monkeypatch.setenv("CRM_TEST_DB_PASSWORD", "wrong")
        code, out, err = run(capsys, "--home", str(home), "users", "list")
        assert code == 1 and "password authentication failed" in err and "Traceback" not in err
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        engine.dispose()


def test_the_folders_it_makes_are_private(tmp_path: Path) -> None:
    import stat

    home = tmp_path / "home"
    assert main(["--home", str(home), "contacts", "list"]) == 0
    for folder in ("config", "data", "state"):
        assert stat.S_IMODE((home / folder).stat().st_mode) == 0o700, folder
