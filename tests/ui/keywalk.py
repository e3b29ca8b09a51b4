"""Pressing keys the way a user does, and noticing what a user would: the app gone, an error notification, an
ERROR in the log, a screen left on top that Esc cannot close. Shared by the every-key test and the random walk.
"""

from __future__ import annotations

import asyncio
import logging
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crm_tui.ui.app import CrmApp
from crm_tui.ui.screens.dialogs import ConfirmDialog

# Never pressed: they end the process or hand the terminal away (the "skip only quit and suspend").
SKIPPED_KEYS = {"ctrl+q", "ctrl+c", "ctrl+z"}
SIZE = (160, 48)


class RecordingApp(CrmApp):
    """The app, keeping every notification it shows (severity and text) for the test to read."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shown: list[tuple[str, str]] = []

    def notify(self, message: str, *, title: str = "", severity: Any = "information", **kwargs: Any) -> None:
        self.shown.append((str(severity), f"{title}: {message}" if title else message))
        super().notify(message, title=title, severity=severity, **kwargs)


def recording_programs(folder: Path) -> Path:
    """$EDITOR and the desktop opener as a command that only writes down what it was given."""
    folder.mkdir(parents=True, exist_ok=True)
    record = folder / "started.txt"
    script = folder / "record-start"
    script.write_text(f'#!/bin/sh\necho "$0 $*" >> "{record}"\n', encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def use_recording_programs(monkeypatch: Any, folder: Path) -> Path:
    script = recording_programs(folder)
    for variable in ("EDITOR", "VISUAL", "CRM_TUI_OPENER"):
        monkeypatch.setenv(variable, str(script))
    return folder / "started.txt"


@dataclass
class Watch:
    """What went wrong since the last look: error notifications and ERROR log records."""

    app: RecordingApp
    caplog: Any
    seen_notes: int = 0
    seen_logs: int = 0
    problems: list[str] = field(default_factory=list)

    def errors_since(self) -> list[str]:
        notes = [text for severity, text in self.app.shown[self.seen_notes :] if severity == "error"]
        self.seen_notes = len(self.app.shown)
        records = self.caplog.records[self.seen_logs :]
        self.seen_logs = len(self.caplog.records)
        logged = [f"log {r.levelname}: {r.getMessage()}" for r in records if r.levelno >= logging.ERROR]
        return notes + logged


def capture_errors(caplog: Any) -> None:
    caplog.set_level(logging.WARNING, logger="crm_tui")


# Workers that run as long as their job, not a key's moment: an IMAP IDLE watch, a mass mailing at its rate.
LONG_RUNNING = ("mail-idle-", "mass-mail")


def running_workers(app: CrmApp) -> list[Any]:
    return [w for w in app.workers if w.is_running and not w.group.startswith(LONG_RUNNING)]


async def settle(pilot: Any, timeout: float = 5.0) -> bool:
    """Until what a key started is over: the screen has handled its messages, no worker runs (a page load,
    a save) and the screen stack stayed the same over two looks (a worker's result may push a dialog)."""
    app = pilot.app
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: tuple[int, int, bool] | None = None
    quiet = 0
    while loop.time() < deadline:
        await pilot._wait_for_screen()
        # Busy: a worker runs, or callbacks wait for the next refresh (a key typed ahead, handed on then).
        busy = bool(running_workers(app)) or bool(app.screen._callbacks) or bool(app._next_callbacks)
        state = (len(app.screen_stack), id(app.screen), busy)
        if not state[2] and state == last:
            quiet += 1
            if quiet >= 2:
                return True
        else:
            quiet = 0
        last = state
        await asyncio.sleep(0.005)  # the poll's step: the app's state decides how long this waits
    return False  # still working after ``timeout``: the caller says whether that is a defect


def answer_for(screen: Any) -> str:
    """The key that leaves things as they were: "no" to delete, move, send or convert; "yes" to discard."""
    if isinstance(screen, ConfirmDialog):
        title = f"{screen._title} {screen._confirm}".lower()
        return "y" if "discard" in title else "n"
    return "escape"


async def answer(pilot: Any, screen: Any) -> None:
    """Answer the question on top so that nothing changes: ``answer_for``'s key, or for a choice that offers
    to discard (leaving a mail written: keep it as a draft, or discard it) that choice, by the keyboard."""
    from crm_tui.ui.screens.dialogs import ChoiceDialog

    if isinstance(screen, ChoiceDialog):
        values = [value for value, _label in screen._choices]
        if "discard" in values:
            await quick_press(pilot, "home")
            for _ in range(values.index("discard")):
                await quick_press(pilot, "down")
            await quick_press(pilot, "enter")
            return
    await quick_press(pilot, answer_for(screen))


async def back_to(pilot: Any, screen: Any, mode: str, attempts: int = 5) -> bool:
    """Esc (or "no") until ``screen`` is on top of ``mode`` again, at most ``attempts`` keys."""
    app = pilot.app
    for _ in range(attempts + 1):
        await settle(pilot)
        if app._exit or not app.is_running:
            return False
        if app.current_mode != mode:
            app.switch_mode(mode)
            await settle(pilot)
            continue
        if app.screen is screen:
            return True
        if _ == attempts:
            break
        await answer(pilot, app.screen)
    return app.screen is screen


def keys_of(screen: Any) -> list[str]:
    """Every key the screen itself declares (its BINDINGS and its classes'), each once, in order; for a
    dialog or picker whose list has the focus, that list's keys too (Enter chooses, as a user does)."""
    from textual.widgets import OptionList

    keys: list[str] = []
    maps = [screen._bindings]
    if isinstance(screen.focused, OptionList):
        maps.append(screen.focused._bindings)
    for bindings in maps:
        for key in bindings.key_to_bindings:
            if key not in SKIPPED_KEYS and key not in keys:
                keys.append(key)
    return keys


def key_label(screen: Any, key: str) -> str:
    bindings = screen._bindings.key_to_bindings.get(key) or []
    ids = ",".join(b.id or b.action for b in bindings)
    return f"{key} ({ids})" if ids else key


async def quick_press(pilot: Any, key: str) -> None:
    """Press ``key`` as Pilot does, but wait on the screen having handled its messages instead of on the
    process going idle (two 20 ms sleeps a key in Pilot): the random walk presses 6,000 keys."""
    import unicodedata

    from textual import events
    from textual.keys import REPLACED_KEYS, _character_to_key, _get_unicode_name_from_key

    app = pilot.app
    if len(key) == 1 and not key.isalnum():
        key = _character_to_key(key)
    try:
        char: str | None = unicodedata.lookup(_get_unicode_name_from_key(REPLACED_KEYS.get(key, key)))
    except KeyError:
        char = key if len(key) == 1 else None
    event = events.Key(key, char)
    event.set_sender(app)
    app._driver.send_message(event)
    for _ in range(2):  # the key, then what its action mounted (a form, a dialog)
        await asyncio.sleep(0)  # no time: hands the loop to the app once
        await pilot._wait_for_screen()
