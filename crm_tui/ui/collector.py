"""The UI process's garbage collection: its one owner.

A full collection over the app's heap paused keystrokes for up to ~300 ms at the benchmark's scale, and
collections while a mode builds its widgets made opening the board, the calendar and the settings 100-180 ms
slower (benchmarks/app_scale.py). So, once the app runs as the process (``run_app``), the heap built at start-up
is frozen (out of the collector's sight), automatic collection is switched off, and the app collects itself:
young objects often (cheap), everything only when the user has not pressed a key for a moment. The app gives
the collector back on every way out. The sync's own process settings live in its process
(``mail/sync/process_tuning.py``), never here.
"""

from __future__ import annotations

import gc
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textual.app import App

INTERVAL = 0.5  # seconds between the app's own collections (young generation while typing)
IDLE = 0.5  # a full collection only after this long without a key
FULL_EVERY = 10.0  # and at most this often
FULL_AFTER = 5  # and only once the middle generation was collected this many times since the last one


class Collector:
    def __init__(self) -> None:
        self.taken_over = False
        self._last_key_at = 0.0
        self._last_full = 0.0

    def take_over(self, app: App[Any]) -> None:
        gc.collect()
        gc.freeze()
        gc.disable()
        self.taken_over = True
        app.set_interval(INTERVAL, self.collect)

    def give_back(self) -> None:
        if self.taken_over:
            self.taken_over = False
            gc.unfreeze()
            gc.enable()

    def key_pressed(self) -> None:
        self._last_key_at = time.monotonic()

    def collect(self) -> None:
        now = time.monotonic()
        idle = now - self._last_key_at >= IDLE
        older_grew = gc.get_count()[2] >= FULL_AFTER
        if idle and older_grew and now - self._last_full >= FULL_EVERY:
            gc.collect()
            self._last_full = now
        elif gc.get_count()[1] >= 10:
            gc.collect(1)  # long typing sessions still get their middle generation collected
        elif gc.get_count()[0]:
            gc.collect(0)
