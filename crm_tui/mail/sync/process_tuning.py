"""The process-wide settings a sync tunes for its speed and memory, and their one owner.

Three settings of the whole process matter to a sync, and nothing else in the sync sets them:

- the garbage collector's thresholds (``gc.set_threshold``), for a whole pass (``tuned_for_a_pass``);
- the interpreter's switch interval (``sys.setswitchinterval``), for a header pass (``quick_handoffs``);
- glibc's mmap threshold (``mallopt``), once for the process, at its first pass (it cannot be read back).

The first two are restored when the last pass running in the process ends: two accounts syncing side by side
in one process share one tuning, and neither puts the settings back under the other. They are meant for the
process that runs the sync (``crm-tui sync``, the background process); a process that does anything else
meanwhile (a UI) shares them while a pass runs.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

# A first sync makes hundreds of thousands of objects that live until their batch is stored: with the
# collector's default threshold (700) it scanned them over and over, stalling batches by 50-130 ms.
GC_THRESHOLD = (50_000, 20, 100)
SWITCH_INTERVAL = 0.001  # seconds a thread may hold the interpreter lock while another waits (header pass)
MMAP_THRESHOLD = 2**20

_LOCK = threading.Lock()
_passes = 0  # passes running in this process, and the thresholds they found before the first
_threshold_before: tuple[int, int, int] = gc.get_threshold()
_header_passes = 0
_interval_before = 0.0
_heap_steady = False


@contextlib.contextmanager
def tuned_for_a_pass() -> Iterator[None]:
    """The collector's thresholds at GC_THRESHOLD while a pass runs (and the heap steady, ``_steady_heap``);
    back to what they were once the last pass running in this process ends."""
    global _passes, _threshold_before
    _steady_heap()
    with _LOCK:
        if _passes == 0:
            _threshold_before = gc.get_threshold()
            gc.set_threshold(*GC_THRESHOLD)
        _passes += 1
    try:
        yield
    finally:
        with _LOCK:
            _passes -= 1
            if _passes == 0:
                gc.set_threshold(*_threshold_before)


def quick_handoffs(batches: Iterable[T]) -> Iterator[T]:
    """``batches`` (the header pass's), with the interpreter's switch interval at SWITCH_INTERVAL meanwhile.

    Each batch passes four threads (the reader, the helper's result thread, the store, and back for the
    next parse); with Python's default of 5 ms, a thread waited up to that long for the interpreter lock at
    each hand-off, while the first rows were what the user waited for. Alternate runs of 10 rounds, the time
    to headers over a raw FETCH: median 1.36 against 1.32, best 1.21 against 1.09."""
    global _header_passes, _interval_before
    with _LOCK:
        if _header_passes == 0:
            _interval_before = sys.getswitchinterval()
            sys.setswitchinterval(min(_interval_before, SWITCH_INTERVAL))
        _header_passes += 1
    try:
        yield from batches
    finally:
        with _LOCK:
            _header_passes -= 1
            if _header_passes == 0:
                sys.setswitchinterval(_interval_before)


def _steady_heap() -> None:
    """Keep a long sync's memory flat (glibc only; elsewhere nothing to do). Once per process.

    Body batches arrive in megabyte pieces on the helpers' result threads and are freed on this one. glibc
    raises its mmap threshold each time such a piece is freed, after which the pieces come from per-thread
    heaps that keep the freed space: with two helpers a 10,000-message sync peaked at 126-140 MiB against
    111-115 for 2,500. A fixed threshold (pieces of 1 MiB and more are mapped, and unmapped when freed)
    brought it to 103-111 MiB, measured; at 256 KiB the many mappings made the full sync a tenth slower."""
    global _heap_steady
    if _heap_steady:
        return
    _heap_steady = True
    import platform  # here, and ctypes below: once per process, not with every import of the sync

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return
    import ctypes  # once per process, as platform above

    with contextlib.suppress(OSError, AttributeError):
        libc: Any = ctypes.CDLL(None)
        libc.mallopt(-3, MMAP_THRESHOLD)  # M_MMAP_THRESHOLD
