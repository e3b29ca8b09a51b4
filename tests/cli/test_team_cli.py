"""Followers and groups headless: `opportunities follow|unfollow DEAL USER` and `users groups ...`, with the
user named by address, user:N or N; an unknown user or group is one line and exit 1."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crm_tui.cli.main import main
from crm_tui.core.db import open_database, sqlite_url
from crm_tui.core.services import team
from tests.utils import factories
from tests.utils.ids import id_of

AT = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def test_follow_unfollow_and_groups(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = open_database(sqlite_url(tmp_path / "data" / "crm.sqlite3"))
    with db.write() as s:
        anna = factories.user(s, AT, "Anna Berg")
        ben = factories.user(s, AT, "Ben Kraus")
        deal = id_of(factories.deal(s, AT, factories.pipeline(s, "Sales"), title="Roof", owner_id=anna.id))
    db.dispose()
    base = ["--home", str(tmp_path)]
    assert main([*base, "opportunities", "follow", f"opportunity:{deal}", ben.email]) == 0
    assert "follows it now; followers: Ben Kraus" in capsys.readouterr().out
    assert main([*base, "opportunities", "follow", str(deal), f"user:{ben.id}"]) == 0
    assert "follows it already" in capsys.readouterr().out
    assert main([*base, "opportunities", "follow", str(deal), "nobody@example.com"]) == 1
    assert "no user with the address 'nobody@example.com'" in capsys.readouterr().err
    assert main([*base, "users", "groups", "create", "Service"]) == 0
    assert main([*base, "users", "groups", "add", "service", ben.email]) == 0
    assert main([*base, "users", "groups", "add", "Service", str(anna.id)]) == 0
    assert main([*base, "users", "groups", "rename", "Service", "Field service"]) == 0
    capsys.readouterr()
    assert main([*base, "users", "groups", "list", "--json"]) == 0
    [group] = json.loads(capsys.readouterr().out)
    assert group["name"] == "Field service"
    assert [u["name"] for u in group["members"]] == ["Anna Berg", "Ben Kraus"]
    assert main([*base, "users", "groups", "remove", "Field service", ben.email]) == 0
    assert main([*base, "opportunities", "unfollow", str(deal), ben.email]) == 0
    assert "no longer follows it; followers: none" in capsys.readouterr().out
    assert main([*base, "users", "groups", "delete", "Nope"]) == 1
    assert "no group named 'Nope'" in capsys.readouterr().err
    db = open_database(sqlite_url(tmp_path / "data" / "crm.sqlite3"))
    with db.read() as s:
        assert team.followers(s, deal) == ()
        [only] = team.groups(s)
        assert [u.name for u in only.members] == ["Anna Berg"]
    db.dispose()
