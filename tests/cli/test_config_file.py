"""config.toml is the user's file: a setting crm-tui writes (M in Settings > Users: "this user is me") changes
that one value and keeps the rest as the user wrote it: comments, blank lines, the order, a key remapped for a
binding crm-tui does not have (yet)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from crm_tui.runtime.settings import load_settings, set_config_value
from crm_tui.ui.app import CrmApp
from crm_tui.ui.widgets.status_bar import StatusBar
from tests.ui.helpers import make_context, wait_for

USERS_CONFIG = """\
# My crm-tui settings -- keep these notes!

me = "anna.berg@example.com"   # the first user, for now
timezone = "Europe/Berlin"

# Slower mass mail: our provider complained.
mass_mail_per_minute = 12

[keymap]
# quit with ctrl+q only
"app.quit" = "ctrl+q"
"plugin.not_yet_there" = "ctrl+z"   # a binding this version does not have
"""


async def test_a_setting_changed_from_the_app_keeps_the_comments_and_the_unknown_key(demo_home: Path) -> None:
    config = demo_home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(USERS_CONFIG, encoding="utf-8")
    context = make_context(demo_home, demo=True)
    app = CrmApp(context, start_mode="settings")
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.screen.query_one("#settings-table", DataTable)
        await wait_for(lambda: table.row_count == 5, pilot)
        await pilot.press("j", "M")  # the second user is me from now on
        await wait_for(lambda: "Jonas Weber" in str(app.screen.query_one(StatusBar).render()), pilot)
    context.close()
    assert config.read_text("utf-8") == USERS_CONFIG.replace(
        'me = "anna.berg@example.com"', 'me = "jonas.weber@example.com"'
    )
    settings = load_settings(config)
    assert settings.me == "jonas.weber@example.com" and settings.mass_mail_per_minute == 12
    assert settings.keymap == {"app.quit": "ctrl+q", "plugin.not_yet_there": "ctrl+z"}


def test_a_new_setting_goes_before_the_tables_and_nothing_else_moves(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(USERS_CONFIG.replace('me = "anna.berg@example.com"   # the first user, for now\n', ""))
    set_config_value(config, "me", "ben@crm.example")
    lines = config.read_text("utf-8").splitlines()
    assert lines.index('me = "ben@crm.example"') < lines.index("[keymap]")
    assert [line for line in lines if line != 'me = "ben@crm.example"' and line] == [
        line for line in USERS_CONFIG.splitlines() if line and not line.startswith("me =")
    ]
    assert load_settings(config).keymap["plugin.not_yet_there"] == "ctrl+z"


def test_a_missing_config_starts_as_the_commented_example(tmp_path: Path) -> None:
    from crm_tui.runtime.settings import EXAMPLE_CONFIG

    config = tmp_path / "config" / "config.toml"
    set_config_value(config, "me", "anna@crm.example")
    assert config.read_text("utf-8") == EXAMPLE_CONFIG + 'me = "anna@crm.example"\n'


def test_the_delay_before_mail_goes_out_is_read_from_the_config(tmp_path: Path) -> None:
    """send_delay_seconds, as the example config documents it (it was left out when the file was read)."""
    config = tmp_path / "config.toml"
    config.write_text("send_delay_seconds = 0\n")
    assert load_settings(config).send_delay_seconds == 0
    config.write_text("# none set\n")
    assert load_settings(config).send_delay_seconds == 10
