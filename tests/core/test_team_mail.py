"""Automation mail to the deal's team (its owner and followers) and to a group of users: whom it reaches, read
when the mail is written, each address once, one mail with every recipient on it (as the other roles send)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from crm_tui.core import models as m
from crm_tui.core.automation import actions, rules
from crm_tui.core.clock import FixedClock
from crm_tui.core.db import Database
from crm_tui.core.errors import CrmError, ValidationError
from crm_tui.core.services import email_templates, team
from crm_tui.core.services.rows import get_or_404
from tests.core.test_automation import START, World, _mail_world
from tests.utils import factories
from tests.utils.ids import id_of


@pytest.fixture
def world(db: Database, tmp_path: Path) -> World:
    return World(db, FixedClock(START), tmp_path)


def _template(world: World) -> None:
    with world.db.write() as s:
        email_templates.create_template(s, email_templates.TemplateInput(
            name="Won", subject="{{ deal.title }} is won", body="Team, it is signed.\n"), now=START)  # fmt: skip


def _addresses(world: World, user_id: int) -> str:
    with world.db.read() as s:
        return get_or_404(s, m.User, user_id).email


def _mails(world: World) -> list[list[str]]:
    with world.db.read() as s:
        return [item.recipients.split("\n") for item in s.scalars(select(m.OutboxItem))]


def test_mail_to_the_team_reaches_the_owner_and_each_follower_once(world: World) -> None:
    _mail_world(world)
    _template(world)
    with world.db.write() as s:
        third = id_of(factories.user(s, START, "Cem Service"))
    world.rule(stage_id=world.stages["Won"].id, trigger="enter", action="send_email",
               params={"template": "Won", "to": "team"})  # fmt: skip
    deal = world.deal(title="Roof T")
    with world.db.write() as s:
        assert team.follow(s, deal, world.other, now=START) is True
        assert team.follow(s, deal, world.me, now=START) is True  # the owner follows too: still once
        assert team.follow(s, deal, third, now=START) is True
        assert team.follow(s, deal, third, now=START) is False  # following twice changes nothing
        assert team.unfollow(s, deal, third) is True
    world.move(deal, "Won")
    [item] = world.run().items
    assert item.outcome == "done", item.message
    assert _mails(world) == [[_addresses(world, world.me), _addresses(world, world.other)]]
    assert world.run().items == []  # exactly once


def test_the_team_is_read_when_the_mail_is_written(world: World) -> None:
    _mail_world(world)
    _template(world)
    world.rule(stage_id=world.stages["Won"].id, trigger="enter", action="send_email", delay_value=1,
               delay_unit="days", params={"template": "Won", "to": "team"})  # fmt: skip
    deal = world.deal(title="Roof L")
    world.move(deal, "Won")
    with world.db.write() as s:  # added after the move, before the mail fires
        team.follow(s, deal, world.other, now=START)
    world.clock.advance(days=2)
    [item] = world.run().items
    assert item.outcome == "done", item.message
    assert _mails(world) == [[_addresses(world, world.me), _addresses(world, world.other)]]


def test_mail_to_a_group_reaches_its_members(world: World) -> None:
    _mail_world(world)
    _template(world)
    with world.db.write() as s:
        cem = id_of(factories.user(s, START, "Cem Service"))
        group = team.create_group(s, "Service", now=START)
        team.add_member(s, group, cem)
        team.add_member(s, group, world.other)
        assert team.add_member(s, group, cem) is False
    rule = world.rule(stage_id=world.stages["Won"].id, trigger="enter", action="send_email",
                      params={"template": "Won", "to": "group", "group_id": group})  # fmt: skip
    with world.db.read() as s:
        said = actions.describe(s, get_or_404(s, m.AutomationRule, rule))
    assert said == "mail 'Won' to the group 'Service'"
    deal = world.deal(title="Roof G")
    world.move(deal, "Won")
    [item] = world.run().items
    assert item.outcome == "done", item.message
    # members by name: Ben Sales, Cem Service; the owner is not a member, so not a recipient
    assert _mails(world) == [[_addresses(world, world.other), _addresses(world, cem)]]


def test_a_deleted_group_fails_the_mail_with_the_reason(world: World) -> None:
    _mail_world(world)
    _template(world)
    with world.db.write() as s:
        group = team.create_group(s, "Service", now=START)
        team.add_member(s, group, world.other)
    world.rule(stage_id=world.stages["Won"].id, trigger="enter", action="send_email",
               params={"template": "Won", "to": "group", "group_id": group})  # fmt: skip
    deal = world.deal()
    with world.db.write() as s:
        team.delete_group(s, group)
    world.move(deal, "Won")
    [item] = world.run().items
    assert item.outcome == "failed" and "group no longer exists" in item.message
    assert _mails(world) == []


def test_a_group_rule_needs_a_group_and_the_team_needs_a_deal(world: World) -> None:
    with world.db.write() as s:
        with pytest.raises(ValidationError) as caught:
            rules.create_rule(s, rules.RuleInput(name="g", action="send_email", scope="stage",
                              stage_id=world.stages["Won"].id, trigger="enter",
                              params={"template": "", "to": "group"}), now=START)  # fmt: skip
        assert "params.group_id" in caught.value.errors
        with pytest.raises(ValidationError) as caught:
            rules.create_rule(s, rules.RuleInput(name="t", action="send_email", scope="status", entity="lead",
                              status="new", trigger="enter", params={"template": "", "to": "team"}),
                              now=START)  # fmt: skip
        assert "only deals have a team" in caught.value.errors["params.to"]


def test_groups_are_named_once_and_can_be_renamed(world: World) -> None:
    with world.db.write() as s:
        group = team.create_group(s, "Service", now=START)
        with pytest.raises(ValidationError):
            team.create_group(s, "service", now=START)
        team.rename_group(s, group, "Field service")
        assert team.group_by_name(s, "FIELD SERVICE") == group
        assert [g.name for g in team.groups(s)] == ["Field service"]
        team.delete_group(s, group)
        with pytest.raises(CrmError):
            team.group_by_name(s, "Field service")


def test_a_database_from_before_followers_and_groups_opens_and_goes_back(tmp_path: Path) -> None:
    """A 0022 database: its users come through the upgrade, with no followers and no groups; a deal can then be
    followed and a group made; the way back to 0022 drops only the three new tables."""
    import sqlite3

    from crm_tui.core.db import open_database, sqlite_url
    from tests.core.test_migrations import _database_at, _migrate

    path = _database_at(tmp_path, "0022")
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO user (id, name, email, active, created_at) "
            "VALUES (1, 'Anna Berg', 'anna@example.com', 1, '2026-11-21 08:00:00.000000')"
        )
    db = open_database(sqlite_url(path), backup_dir=tmp_path / "backups")
    try:
        with db.write() as s:
            assert team.groups(s) == []
            deal = id_of(factories.deal(s, START, factories.pipeline(s, "Sales"), title="Roof", owner_id=1))
            assert team.followers(s, deal) == ()
            assert team.follow(s, deal, 1, now=START)
            group = team.create_group(s, "Service", now=START)
            team.add_member(s, group, 1)
        with db.read() as s:
            assert [f.name for f in team.followers(s, deal)] == ["Anna Berg"]
            assert team.team_user_ids(s, get_or_404(s, m.Opportunity, deal)) == [1]
        _migrate(db, "0022", down=True)
    finally:
        db.dispose()
    with sqlite3.connect(path) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        names = [row[0] for row in connection.execute("SELECT name FROM user")]
    assert not {"opportunity_follower", "user_group", "user_group_member"} & tables
    assert names == ["Anna Berg"]
