"""What the app knows of the background mail sync: each account's state, as the status bar shows it
("syncing headers 120/400", "12 new · 09:41", "offline, retrying in 2 min", "wrong password").

The sync itself runs in the background process (runtime/background.py, supervised by ui/supervisor.py); its
events arrive here as plain dictionaries. Nothing here touches the network or the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crm_tui.core.sanitize import terminal_safe

TICK_SECONDS = 15.0  # how often the app looks whether there are accounts (and so a background process to run)


@dataclass
class AccountState:
    running: bool = False
    again: bool = False  # another pass follows this one (asked for, or IMAP IDLE news, during it)
    failures: int = 0
    text: str = ""
    asked: bool = False  # the user asked for this pass (ctrl+r): its outcome is said, whatever it is


@dataclass
class MailSyncStatus:
    states: dict[str, AccountState] = field(default_factory=dict)
    idle_ready: set[str] = field(default_factory=set)  # accounts whose IDLE command is in place

    def accounts(self, names: list[str]) -> None:
        """The accounts there are: removed ones are forgotten."""
        for name in list(self.states):
            if name not in names:
                del self.states[name]
                self.idle_ready.discard(name)

    def asked(self, names: list[str]) -> None:
        """ctrl+r: the passes show as under way at once (the background process confirms, or queues them)."""
        for name in names:
            state = self.states.setdefault(name, AccountState())
            state.asked = True
            if state.running:
                state.again = True
            else:
                state.running = True
                state.text = "syncing…"

    def syncing(self, event: dict[str, Any]) -> None:
        state = self.states.setdefault(event["account"], AccountState())
        state.running = True
        state.again = False
        state.asked = state.asked or bool(event.get("asked"))
        state.text = "syncing…"

    def progress(self, event: dict[str, Any]) -> None:
        state = self.states.setdefault(event["account"], AccountState())
        state.running = True
        phase = "bodies" if event["what"] == "bodies" else "headers"
        state.text = f"syncing {phase} {event['done']}/{event['total']}"

    def finished(self, event: dict[str, Any], *, wall_clock: str) -> None:
        state = self.states.setdefault(event["account"], AccountState())
        state.running = False
        state.again = bool(event.get("again"))
        state.asked = False
        state.failures = int(event.get("failures") or 0)
        kind, error = event.get("kind"), event.get("error")
        if error is None:
            new = event.get("new") or 0
            state.text = (f"{new} new · " if new else "up to date · ") + wall_clock
        elif kind == "password":
            state.text = "wrong password (crm-tui account edit)"
        elif kind in ("host", "port", "timeout", "dropped", "protocol"):
            minutes = event.get("retry_minutes")
            state.text = f"offline, retrying in {minutes:g} min" if minutes else "offline"
        elif kind == "disk":  # the notification says what was saved; the interval tries again
            state.text = "the disk is full (free some space)"
        elif kind == "demo":
            state.text = "not connected"
        elif kind == "busy":
            state.text = "another sync is running"
        else:
            state.text = "failed: " + str(error).split(": ", 1)[-1][:60]

    def idle(self, event: dict[str, Any]) -> None:
        if event.get("ready"):
            self.idle_ready.add(event["account"])
        else:
            self.idle_ready.discard(event["account"])

    def stopped(self) -> None:
        """The background process ended: no pass runs (a restarted one says again what it does)."""
        for state in self.states.values():
            if state.running:
                state.running = False
                state.again = False
                state.text = ""
        self.idle_ready.clear()

    def status_text(self) -> str:
        parts = [f"{name}: {state.text}" for name, state in sorted(self.states.items()) if state.text]
        return terminal_safe(" · ".join(parts), max_length=120)
