"""`crm-tui mail report`: the sent-mail report headless, as a table, JSON and CSV, on the demo with a sent
history added; a wrong date is a usage error (exit 2), an unknown user one line (exit 1)."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path

import pytest

from crm_tui.cli.main import main
from crm_tui.core.db import open_database, sqlite_url
from tests.conftest import DEMO_NOW
from tests.utils.sent_history import add_sent_history


def run(capsys: pytest.CaptureFixture[str], home: Path, *argv: str) -> tuple[int, str, str]:
    code = main(["--home", str(home), "--demo", "--now", DEMO_NOW, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_report_as_table_json_and_csv(demo_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = open_database(sqlite_url(demo_home / "data" / "demo.sqlite3"))
    history = add_sent_history(db, datetime.fromisoformat(DEMO_NOW))
    db.dispose()
    period = ("--user", history.user_email, "--from", "2026-11-01", "--to", "2026-11-30")

    code, out, err = run(capsys, demo_home, "mail", "report", *period, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["counts"] == {"sent": 3, "failed": 1, "refused": 1, "bounced": 1, "replied": 1}
    assert [(r["recipient"], r["detail"]) for r in data["rows"]["bounced"]] == [
        ("max@kunde.example", "550 No such user here")
    ]
    assert [r["recipient"] for r in data["rows"]["replied"]] == ["lea@kunde.example"]

    code, out, _ = run(capsys, demo_home, "mail", "report", *period, "--csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][:3] == ["outcome", "at", "recipient"]
    assert [row[0] for row in rows[1:]] == ["sent", "sent", "sent", "failed", "refused", "bounced", "replied"]
    # a subject starting with "=" stays text in a spreadsheet
    assert rows[4][:5] == [
        "failed",
        "2026-11-21 09:00",
        "down@kunde.example",
        "'=Rechnung",
        "554 relay access denied",
    ]

    code, out, _ = run(capsys, demo_home, "mail", "report", *period)
    assert code == 0
    assert "bounced  1" in out and "max@kunde.example" in out and "550 No such user here" in out

    # another month: nothing
    code, out, _ = run(capsys, demo_home, "mail", "report", "--user", history.user_email, "--from", "2026-10-01",
                       "--to", "2026-10-31", "--json")  # fmt: skip
    assert json.loads(out)["counts"]["sent"] == 0


def test_wrong_input(demo_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, demo_home, "mail", "report", "--from", "2026-13-01")
    assert code == 2 and err.count("\n") == 1
    code, _, err = run(capsys, demo_home, "mail", "report", "--user", "nobody@nowhere.example")
    assert code == 1 and "no user with the e-mail nobody@nowhere.example" in err and err.count("\n") == 1
    code, _, err = run(capsys, demo_home, "mail", "report", "--from", "2026-11-30", "--to", "2026-11-01")
    assert code == 1 and "ends (2026-11-01) before it starts" in err
