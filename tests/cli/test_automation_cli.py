"""Automation headless, for cron: `crm-tui automations run` fires each due action exactly once, also when the
firing process is killed with SIGKILL at named points and when two of them run at the same time."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import ColumnElement, func, select
from sqlmodel import SQLModel, col

from crm_tui.cli.main import main
from crm_tui.core import models as m
from crm_tui.core.automation import rules
from crm_tui.core.db import Database, open_database, sqlite_url
from crm_tui.core.services import opportunities, pipelines
from tests.utils import factories
from tests.utils.ids import id_of

DEALS = 300  # two rules each: 600 jobs, three batches
MOVED_AT = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
LATER = "2026-06-03T12:00:00+00:00"


def _database(home: Path) -> Database:
    return open_database(sqlite_url(home / "data" / "crm.sqlite3"))


@pytest.fixture(scope="session")
def automation_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with 300 deals that entered "Proposal": each has a planned call and a repeat lead due."""
    home = tmp_path_factory.mktemp("automation-template")
    db = _database(home)
    with db.write() as s:
        factories.user(s, MOVED_AT, "Anna Berg")
        pipe = factories.pipeline(s, "Sales")
        lead_in, proposal, *_ = pipelines.stages_of(s, id_of(pipe))
        offer_sent = pipelines.substates_of(s, id_of(proposal))[0]
        person = factories.contact(s, MOVED_AT, "Kunde", emails=["kunde@example.com"])
        R = rules.RuleInput
        rules.create_rule(s, R("call", "plan_activity", stage_id=proposal.id, trigger="enter", delay_value=1,
                               delay_unit="days", params={"subject": "Call about {{ deal.title }}"}), now=MOVED_AT)  # fmt: skip
        rules.create_rule(s, R("repeat", "repeat_lead", stage_id=proposal.id, trigger="enter", delay_value=1,
                               delay_unit="days", params={"title": "Again: {{ deal.title }}"}), now=MOVED_AT)  # fmt: skip
        rules.create_rule(s, R("offer", "set_substate", stage_id=proposal.id, trigger="enter", delay_value=1,
                               delay_unit="days", params={"substate_id": offer_sent.id}), now=MOVED_AT)  # fmt: skip
        for n in range(DEALS):
            deal = factories.deal(s, MOVED_AT, pipe, title=f"Deal {n:03d}", contact_ids=[person.id])
            opportunities.move_to_stage(s, id_of(deal), id_of(proposal), now=MOVED_AT, user_id=None)
    db.dispose()
    return home


@pytest.fixture
def home(automation_template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "home"
    shutil.copytree(automation_template, target)
    return target


def _run(home: Path, *args: str, kill_at: str | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "CRM_TUI_AUTOMATION_KILL_AT"}
    if kill_at:
        env["CRM_TUI_AUTOMATION_KILL_AT"] = kill_at
    return subprocess.Popen(
        [sys.executable, "-m", "crm_tui", "--home", str(home), "automations", "run", "--now", LATER, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def _assert_each_fired_once(home: Path) -> None:
    db = _database(home)
    with db.read() as s:

        def count(model: type[SQLModel], *where: ColumnElement[bool]) -> int:
            return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)

        assert count(m.AutomationJob, col(m.AutomationJob.state) != "done") == 0
        assert count(m.AutomationJob) == 3 * DEALS
        assert count(m.Activity) == DEALS  # one call per deal
        assert count(m.Lead) == DEALS  # one repeat lead per deal
        assert count(m.OpportunitySubstate, col(m.OpportunitySubstate.is_open).is_(True)) == DEALS
        assert len(set(s.scalars(select(col(m.Activity.opportunity_id))))) == DEALS
        # One log line per job, all done.
        rows = s.execute(
            select(col(m.AutomationLog.job_id), func.count()).group_by(col(m.AutomationLog.job_id))
        ).all()
        assert len(rows) == 3 * DEALS and {c for _, c in rows} == {1}
    db.dispose()


@pytest.mark.parametrize("point", ["claimed", "fired", "before_commit", "committed"])
def test_killed_while_firing_then_run_again_fires_each_action_exactly_once(home: Path, point: str) -> None:
    first = _run(home, kill_at=point)
    first.communicate(timeout=120)
    assert first.returncode == -signal.SIGKILL
    second = _run(home)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    fired = int(out.strip().splitlines()[-1].split()[0])
    # Killed before its first commit: the second run fires all; after it, the rest.
    assert fired == (3 * DEALS if point != "committed" else 3 * DEALS - 250)
    _assert_each_fired_once(home)


def test_two_workers_at_once_fire_each_action_exactly_once(home: Path) -> None:
    runs = [_run(home), _run(home)]
    outputs = [run.communicate(timeout=180) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err for _, err in outputs]
    fired = [int(out.strip().splitlines()[-1].split()[0]) for out, _ in outputs]
    assert sum(fired) == 3 * DEALS
    _assert_each_fired_once(home)


def test_dry_run_list_and_log(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--home", str(home)]
    assert main([*base, "automations", "run", "--dry-run", "--now", "2026-06-01T12:00:00+00:00"]) == 0
    assert capsys.readouterr().out.strip().endswith("0 due actions would fire (dry run: nothing changed)")
    assert main([*base, "automations", "run", "--dry-run", "--now", LATER]) == 0
    out = capsys.readouterr().out
    assert out.strip().endswith(f"{3 * DEALS} due actions would fire (dry run: nothing changed)")
    assert main([*base, "automations", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["where"], r["when"], r["pending"]) for r in listed] == [
        ("call", "Sales / Proposal", "1 day after enter", DEALS),
        ("repeat", "Sales / Proposal", "1 day after enter", DEALS),
        ("offer", "Sales / Proposal", "1 day after enter", DEALS),
    ]
    # Nothing fired yet; a run at the later time fires everything and says so.
    assert main([*base, "automations", "run", "--now", LATER]) == 0
    assert (
        capsys.readouterr().out.strip().splitlines()[-1]
        == f"{3 * DEALS} fired, 0 failed, 0 skipped (900 caught up late)"
    )
    assert main([*base, "automations", "log", "--json", "--limit", "5"]) == 0
    log = json.loads(capsys.readouterr().out)
    assert len(log) == 5 and {row["outcome"] for row in log} == {"done"}
    assert main([*base, "automations", "pending", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_a_due_time_ahead_fires_nothing_and_bad_now_is_a_usage_error(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--home", str(home), "automations", "run", "--now", "2026-06-01T12:00:00+00:00"]) == 0
    assert capsys.readouterr().out.strip() == "0 fired, 0 failed, 0 skipped"
    assert main(["--home", str(home), "automations", "run", "--now", "next tuesday"]) == 2
    assert "not an ISO-8601 date-time" in capsys.readouterr().err


def test_a_partner_user_lists_only_their_organizations_deals(
    demo_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--home", str(demo_home), "--demo"]
    assert main([*base, "opportunities", "list", "--json"]) == 0
    everyone = json.loads(capsys.readouterr().out)
    assert main([*base, "users", "list", "--json"]) == 0
    partner_user = next(u for u in json.loads(capsys.readouterr().out) if u.get("organization"))
    (demo_home / "config").mkdir(exist_ok=True)
    (demo_home / "config" / "config.toml").write_text(f'me = "{partner_user["email"]}"\n', encoding="utf-8")
    assert main([*base, "opportunities", "list", "--json"]) == 0
    theirs = json.loads(capsys.readouterr().out)
    organization = partner_user["organization"]
    assert 0 < len(theirs) < len(everyone)
    assert all(organization in (d.get("installer"), d.get("reseller")) for d in theirs)
    expected = [d["id"] for d in everyone if organization in (d.get("installer"), d.get("reseller"))]
    assert [d["id"] for d in theirs] == expected
