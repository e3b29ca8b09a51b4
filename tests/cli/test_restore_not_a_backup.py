"""`restore` of a file that is not a backup says in words what the file is (it printed one line per
compression tarfile tried, as exception reprs: "- method gz: ReadError('empty file')")."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from crm_tui.cli.main import main


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda home, path: path.write_bytes(b""), "is empty, not a crm-tui backup"),
        (
            lambda home, path: path.write_bytes((home / "data" / "crm.sqlite3").read_bytes()),
            "is a SQLite database, not a crm-tui backup: make one with crm-tui backup",
        ),
        (lambda home, path: path.write_text("name,email\nAnn,ann@example.com\n"), "is not a crm-tui backup"),
        (lambda home, path: path.mkdir(), "is a folder, not a crm-tui backup"),
    ],
    ids=["empty", "raw-database", "text", "folder"],
)
def test_restoring_a_file_that_is_not_a_backup_says_what_the_file_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Callable[[Path, Path], object], said: str
) -> None:
    home = tmp_path / "home"
    code, _, err = cli(capsys, "--home", str(home), "contacts", "list")
    assert code == 0, err
    before = (home / "data" / "crm.sqlite3").read_bytes()
    candidate = tmp_path / "crm.backup"
    make(home, candidate)

    code, out, err = cli(capsys, "--home", str(home), "restore", str(candidate), "--yes")

    assert code == 1, out
    assert err.strip() == f"crm-tui: {candidate} {said}; nothing changed"
    assert "Error" not in err and "method" not in err
    assert (home / "data" / "crm.sqlite3").read_bytes() == before
