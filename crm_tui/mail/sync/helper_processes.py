"""The sync's helper processes: started and kept here, and what runs in them first.

A helper is a pool of one process (``concurrent.futures``), started with "spawn", that lives as long as the
process that syncs; the sync hands it a header batch's replies to decode (``mail.headers.header_rows``) and
bodies to fetch and parse over its own connection (``body_fetcher.fetch_and_parse``). Where no process can be
started the sync does that work itself: slower, the same result.

In the helper, this module is the first of crm-tui to load (its ``start`` is the pool's initializer): only the
standard library here. A helper decodes and parses header replies from a first sync's first batch on; until it
is up, the sync does that itself. So a helper starts with the header parser only (``mail.headers``: the
standard library's light modules, 15-20 ms here). The message parser (``mail.parse``, with the email package)
and the body fetcher (``body_fetcher``, with imapclient) import in about 110 ms more: the first helper loads
them and logs in (``prepare_fetcher``) once it has the last header batch, ahead of the bodies. The second
helper starts with the bodies: started and loaded during the header pass, on two cores busy with it, it made
the time to headers 40 ms longer at the median (8 alternating runs).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crm_tui.mail.imap import Endpoint

HELPERS = 2  # helper processes: while one waits for the server the other parses (two cores, and Dovecot)
POOL_THRESHOLD = 400  # fewer bodies than this are parsed in process (a helper takes ~0.1 s to start)
_HELPERS: list[Any] = []  # started helpers, each a one-process pool; they live as long as this process
_HELPERS_FAILED = False
_HELPERS_LOCK = threading.Lock()


def helpers(count: int = 1) -> list[Any]:
    """The first ``count`` helper processes, started as needed, for the life of this process (the app's
    worker reuses them pass after pass); fewer, or none, where no process can be started (then the sync
    parses in this process: slower, the same result).

    Each helper is a pool of one process, so tasks queue for it rather than start another process: the
    header pass keeps two parses in flight on one helper, and the second helper (a second interpreter, a
    tenth of a second of CPU) starts only when the bodies come. Started with "spawn": the app has threads,
    and forking a threaded process is unsafe."""
    global _HELPERS_FAILED
    with _HELPERS_LOCK:
        while len(_HELPERS) < count and not _HELPERS_FAILED:
            helper = _start_helper()
            if helper is None:
                _HELPERS_FAILED = True
                break
            _HELPERS.append(helper)
        return _HELPERS[:count]


def _start_helper() -> Any:
    # Here: loaded when a helper starts (a sync of a few messages starts none), not with the sync.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    try:
        helper = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=start,
            initargs=(os.getpid(),),
        )
        helper.submit(time.sleep, 0).result(timeout=30)  # started and importable
    except Exception:  # noqa: BLE001 - e.g. no fds to hand over under some test runners; parse inline
        return None
    # Stopped before the interpreter tears down the modules its manager thread still uses (else Python
    # prints "Exception ignored in ... weakref_cb" at exit).
    import atexit

    atexit.register(helper.shutdown, wait=False, cancel_futures=True)
    return helper


_WARMING: list[threading.Thread] = []  # helper starts under way in the background


def warm_first() -> None:
    """Start the first helper in the background (its start-up overlaps the login and folder listing)."""
    thread = threading.Thread(target=helpers, name="crm-tui helper start", daemon=True)
    _WARMING[:] = [t for t in _WARMING if t.is_alive()] + [thread]
    thread.start()


def wait_for_starts(timeout: float = 30.0) -> None:
    """Wait for helper starts under way. A sync that fails at once (no server, a wrong password) would else
    end its process while the helper is half started: the child then finds its parent gone mid hand-over and
    prints multiprocessing's traceback (EOFError, a vanished semaphore) under the one-line error."""
    for thread in list(_WARMING):
        thread.join(timeout)


def first_helper() -> Any:
    """The first helper if it is up (started by ``helpers`` or ``warm_first``), else None: the header pass
    uses it from the first batch it is ready for, and does not wait for it."""
    return _HELPERS[0] if _HELPERS else None


# --- in the helper process ---


def start(parent: int) -> None:
    """Pool initializer: end this helper when the process that started it (``parent``, passed in: it may be
    gone before this runs) is gone; a sync killed with SIGKILL cannot tell its helpers to stop.

    ctrl+c in a terminal sends SIGINT to the whole foreground group: the helpers ignore it, the sync stops
    them (or they see it gone), so the user sees no helper's KeyboardInterrupt traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if os.getppid() != parent:
        os._exit(0)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="crm-tui parent watch", daemon=True).start()
    # The header parser, now: while the sync logs in and lists folders, not when the first batch waits for it.
    import crm_tui.mail.headers  # noqa: F401 - loaded now, not imported above: that is what this line does


def prepare_fetcher(endpoint: Endpoint, password: str) -> None:
    """Load the body fetcher and log in with it, ahead of the body phase (the login is kept for it). A
    failure here is left for the body phase's own fetch to report."""
    from crm_tui.mail.sync import body_fetcher  # here: a helper loads it once the bodies are near

    with contextlib.suppress(Exception):  # the body phase's fetch retries and reports
        body_fetcher.connected(endpoint, password)
