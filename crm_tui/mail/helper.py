"""The start of the sync's helper processes: only the standard library here.

A helper decodes and parses header replies from a first sync's first batch on; until it is up, the sync does
that itself. So a helper starts with the header parser only (``mail.headers``: the standard library's light
modules, 15-20 ms here). The message parser (``mail.parse``, with the email package) and the body fetcher
(``mail.fetcher``, with imapclient) import in about 110 ms more: the first helper loads them and logs in
(``prepare_fetcher``) once it has the last header batch, ahead of the bodies. The second helper starts with
the bodies: started and loaded during the header pass, on two cores busy with it, it made the time to headers
40 ms longer at the median (8 alternating runs).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time


def start(parent: int) -> None:
    """Pool initializer: end this helper when the process that started it (``parent``, passed in: it may be
    gone before this runs) is gone; a sync killed with SIGKILL cannot tell its helpers to stop."""
    if os.getppid() != parent:
        os._exit(0)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="crm-tui parent watch", daemon=True).start()
    # The header parser, now: while the sync logs in and lists folders, not when the first batch waits for it.
    import crm_tui.mail.headers  # noqa: F401


def prepare_fetcher(endpoint: object, password: str) -> None:
    """Load the body fetcher and log in with it, ahead of the body phase (the login is kept for it). A
    failure here is left for the body phase's own fetch to report."""
    from crm_tui.mail import fetcher

    with contextlib.suppress(Exception):  # the body phase's fetch retries and reports
        fetcher.connected(endpoint, password)  # type: ignore[arg-type]
