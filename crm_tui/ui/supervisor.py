"""The app's background process: ``python -m crm_tui ... sync --watch --json`` (runtime/background.py), started,
restarted after a crash and stopped with the app.

The child tells what happens as one JSON object a line on its stdout; a thread of this process reads them and
posts each to the app as a ``BackgroundEvent``. The app asks for a sync now with a ``sync`` line on the child's
stdin. The stored mail itself reaches the screens through the database (the app's change watch). The child ends
by itself when this process is gone (it watches its parent, and the end of its stdin).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from crm_tui.core.clock import FixedClock
from crm_tui.runtime.background import PARENT_ENV
from crm_tui.runtime.context import AppContext
from crm_tui.ui.messages import BackgroundEvent, BackgroundStopped

if TYPE_CHECKING:
    from crm_tui.ui.app import CrmApp

RESTART_SECONDS = (1, 2, 5, 10, 30, 60)  # after the child's crashes in a row
STEADY_SECONDS = 60.0  # a child that ran this long before it died starts the count of crashes again
SAY_AFTER_CRASHES = 3  # from this many crashes in a row on, the user is told
STOP_SECONDS = 5.0  # a child asked to stop is killed after this long


def command(context: AppContext) -> list[str]:
    """The child's command line: this installation as the app got it (home, demo or database, pinned clock)."""
    argv = [sys.executable, "-m", "crm_tui"]
    paths = context.paths
    root = paths.config_dir.parent
    # A home of its own (--home, or $CRM_TUI_HOME, which the child inherits); else the platform's folders.
    if [paths.config_dir, paths.data_dir, paths.state_dir] == [root / n for n in ("config", "data", "state")]:
        argv += ["--home", str(root)]
    if context.demo:
        argv.append("--demo")
    if context.db_url:
        argv += ["--db", context.db_url]
    if isinstance(context.clock, FixedClock):
        argv += ["--now", context.clock.now().isoformat()]
    return [*argv, "sync", "--watch", "--json"]


class Supervisor:
    """One child at a time. ``start``, ``sync_now``, ``stop`` and ``exited`` run on the app's thread."""

    def __init__(self, app: CrmApp, context: AppContext):
        self.app = app
        self.context = context
        self.process: subprocess.Popen[str] | None = None
        self.crashes = 0
        self.started_at = 0.0
        self.stopping = False
        self._restart_timer: Any = None
        self._asked: list[str | None] = []  # sync requests made while no child runs

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if self.stopping or self.running or self._restart_timer is not None:
            return
        env = {**os.environ, PARENT_ENV: str(os.getpid())}
        log = self.context.paths.log_file
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a", encoding="utf-8") as errors:  # the child's own tracebacks, if any
                self.process = subprocess.Popen(
                    command(self.context),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=errors,
                    env=env,
                    text=True,
                    encoding="utf-8",
                    bufsize=1,
                    start_new_session=True,  # the terminal's Ctrl+C is the app's to handle, not the child's
                )
        except OSError as exc:
            self.app.report_error(exc, "starting the background sync")
            return
        self.started_at = time.monotonic()
        process = self.process
        threading.Thread(
            target=self._read, args=(process,), name="crm-tui background reader", daemon=True
        ).start()
        for name in self._asked:
            self._send(f"sync {name}" if name else "sync")
        self._asked.clear()

    def _read(self, process: subprocess.Popen[str]) -> None:
        """In the reader thread: each line of the child's stdout becomes a message; its end, BackgroundStopped."""
        assert process.stdout is not None
        with contextlib.suppress(OSError, ValueError):
            for line in process.stdout:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    self.app.post_message(BackgroundEvent(event))
        code = process.wait()
        self.app.post_message(BackgroundStopped(process.pid, code))

    def sync_now(self, name: str | None = None) -> None:
        if self.running:
            self._send(f"sync {name}" if name else "sync")
        else:
            self._asked.append(name)
            self.start()

    def _send(self, line: str) -> None:
        if self.process is None or self.process.stdin is None:
            return
        with contextlib.suppress(OSError, ValueError):  # a child that just died: restarted, asked again later
            self.process.stdin.write(line + "\n")
            self.process.stdin.flush()

    def exited(self, pid: int, code: int) -> None:
        """The child ended: unless the app is stopping, start it again after a pause that grows with the
        crashes in a row; from the third the user is told."""
        if self.process is None or self.process.pid != pid:
            return
        self.process = None
        if self.stopping:
            return
        if time.monotonic() - self.started_at >= STEADY_SECONDS:
            self.crashes = 0
        self.crashes += 1
        delay = RESTART_SECONDS[min(self.crashes, len(RESTART_SECONDS)) - 1]
        if self.crashes >= SAY_AFTER_CRASHES:
            self.app.notify(
                f"The background mail sync stopped {self.crashes} times in a row (exit status {code}); "
                f"starting it again in {delay} s. Details in {self.context.paths.log_file}.",
                title="Mail",
                severity="warning",
                timeout=10,
            )
        self._restart_timer = self.app.set_timer(delay, self._restart)

    def _restart(self) -> None:
        self._restart_timer = None
        self.start()

    def stop(self) -> None:
        """The app ends: the child is asked to stop (end of its stdin, SIGTERM) and killed if it lingers."""
        self.stopping = True
        if self._restart_timer is not None:
            self._restart_timer.stop()
            self._restart_timer = None
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(OSError, ValueError):
            if process.stdin is not None:
                process.stdin.close()
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
